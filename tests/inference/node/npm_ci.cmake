# The Node tests' packages: `npm ci` from the committed package-lock.json, in a copy of
# package.json and package-lock.json under the build directory, so that nothing is
# written into the source tree (the tests find the packages through NODE_PATH).
#
#   cmake -DSOURCE_DIR=<tests/inference/node> -DINSTALL_DIR=<build dir> -DNPM=<npm> -P npm_ci.cmake
#
# `npm ci` runs again only when the lockfile differs from the one last installed: a stamp
# beside the packages holds that lockfile, and `npm ci` deletes node_modules (and the stamp
# with it) before it installs.
foreach(_variable SOURCE_DIR INSTALL_DIR NPM)
  if(NOT DEFINED ${_variable})
    message(FATAL_ERROR "npm_ci.cmake: -D${_variable}=... is required")
  endif()
endforeach()

set(_stamp "${INSTALL_DIR}/node_modules/.actserve-installed-package-lock.json")
if(EXISTS "${_stamp}")
  file(SHA256 "${_stamp}" _installed)
  file(SHA256 "${SOURCE_DIR}/package-lock.json" _wanted)
  if(_installed STREQUAL _wanted)
    message(STATUS "npm_ci.cmake: ${INSTALL_DIR}/node_modules is up to date")
    return()
  endif()
endif()

file(MAKE_DIRECTORY "${INSTALL_DIR}")
file(COPY "${SOURCE_DIR}/package.json" "${SOURCE_DIR}/package-lock.json"
     DESTINATION "${INSTALL_DIR}")
execute_process(
  COMMAND "${NPM}" ci --no-audit --no-fund
  WORKING_DIRECTORY "${INSTALL_DIR}"
  RESULT_VARIABLE _result)
if(NOT _result EQUAL 0)
  message(FATAL_ERROR "npm_ci.cmake: `npm ci` in ${INSTALL_DIR} failed (${_result}); it needs "
                      "npm (deploy/install-deps.sh) and the npm registry")
endif()
configure_file("${SOURCE_DIR}/package-lock.json" "${_stamp}" COPYONLY)
