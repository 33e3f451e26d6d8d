// Memory for tensors on the request path: buffers that are reused from one call to the
// next, so that their pages are already mapped.
//
// Why: the first write to freshly mapped memory costs a page fault per 4 KiB page (about
// 12 us each on the reference VM: 50 ms for one 16 MiB tensor, more than computing it),
// and glibc maps every large allocation afresh and unmaps it on free, so each large
// message would pay those faults again. A BufferPool keeps freed buffers (up to a byte
// budget) and hands them out again; new large buffers are mapped 2 MiB aligned and marked
// MADV_HUGEPAGE, so that when transparent huge pages are available ("madvise" or
// "always" in /sys/kernel/mm/transparent_hugepage/enabled) a first touch costs one fault
// per 2 MiB instead of 512. Each starts at its own offset within the mapping's first page
// (64-byte aligned, stepping by 17 cache lines from one new buffer to the next), so that
// the streams of a fused pass (x, dy and the results) do not all share one offset mod
// 4 KiB, which cost the kernels up to ~40% of the copy limit. bench/README.md has the
// measurements.
//
// The pool also bounds the memory of tensors in flight: Acquire refuses with
// ResourceExhausted once the buffers handed out and not yet returned would exceed
// `max_live_bytes`, so that many concurrent large calls are refused instead of driving
// the process out of memory.
//
//   std::shared_ptr<BufferPool> pool = BufferPool::Create(BufferPoolOptions{});
//   absl::StatusOr<Buffer> buffer = pool->Acquire(bytes);  // uninitialised memory
//   if (!buffer.ok()) return buffer.status();              // over the limit
//   ... write buffer->data() ...
//   grpc::Slice slice = std::move(*buffer).ToSlice();  // becomes part of a message
//   // the memory goes back to the pool when gRPC drops the slice
//
// Thread-safe. Buffers and slices keep their pool alive, so they may outlive the owner
// of the shared_ptr (gRPC may drop a sent slice after the server object is gone).
#ifndef ACTSERVE_SERVER_BUFFER_POOL_H_
#define ACTSERVE_SERVER_BUFFER_POOL_H_

#include <grpcpp/support/slice.h>

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace actserve {
namespace server {

struct BufferPoolOptions {
  // Buffers of at least this many bytes come from the pool; smaller ones from malloc,
  // whose own free lists already reuse them. Bytes. Default 256 KiB.
  size_t min_pooled_bytes = size_t{256} << 10;
  // Most bytes of free buffers kept for reuse; a buffer released beyond that is unmapped.
  // Bytes; 0 keeps nothing (every large buffer is mapped afresh). Default 512 MiB.
  size_t max_cached_bytes = size_t{512} << 20;
  // Mark new pooled buffers MADV_HUGEPAGE. Default true.
  bool huge_pages = true;
  // Most bytes of buffers handed out and not yet returned, pooled and small ones alike
  // (pooled ones count their rounded capacity); an Acquire beyond it is
  // ResourceExhausted. Bytes; 0: unlimited. Default 0.
  size_t max_live_bytes = 0;
  // Fill every buffer that Acquire hands out with kCanary, so that tests can prove that
  // no reply ever carries bytes that the call did not write (a result left unwritten
  // would show the canary instead of stale data from an earlier call). Costs a write of
  // every byte; for tests. Default false.
  bool fill_with_canary = false;
};

// The 8-byte pattern of BufferPoolOptions::fill_with_canary, repeated from each buffer's
// start. Read as any dtype (float16, bfloat16, float32 or float64 elements at their
// natural alignment) every element is a NaN whose payload arithmetic on ordinary inputs
// never produces, so a computed result cannot contain it by chance.
inline constexpr char kCanary[8] = {'\xa5', '\x7f', '\xc3', '\x7f',
                                    '\x96', '\x7f', '\xf5', '\x7f'};

class BufferPool;

// An owned buffer of size() bytes, uninitialised. Move-only; destruction returns the
// memory to its pool.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // A view of `size` bytes at `data` that another owner keeps alive for as long as this
  // buffer is used: destroying it frees nothing, and ToSlice copies the bytes.
  static Buffer Borrowed(char* data, size_t size) { return Buffer(nullptr, data, size, 0); }

  char* data() const { return data_; }
  size_t size() const { return size_; }
  absl::Span<char> span() const { return {data_, size_}; }

  // A slice of the buffer's size() bytes that owns the memory from now on: the memory
  // goes back to the pool when the last reference to the slice is dropped. An empty
  // buffer gives an empty slice; a borrowed one, a copy of its bytes.
  grpc::Slice ToSlice() &&;

 private:
  friend class BufferPool;
  Buffer(std::shared_ptr<BufferPool> pool, char* data, size_t size, size_t capacity)
      : pool_(std::move(pool)), data_(data), size_(size), capacity_(capacity) {}
  void Reset();

  std::shared_ptr<BufferPool> pool_;
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Bytes that the caller allocates by other means (the engine's scratch), counted against
// the pool's max_live_bytes for as long as the reservation lives. Move-only.
class Reservation {
 public:
  Reservation() = default;
  ~Reservation();
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  size_t bytes() const { return bytes_; }

 private:
  friend class BufferPool;
  Reservation(std::shared_ptr<BufferPool> pool, size_t bytes)
      : pool_(std::move(pool)), bytes_(bytes) {}
  void Reset();

  std::shared_ptr<BufferPool> pool_;
  size_t bytes_ = 0;
};

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static std::shared_ptr<BufferPool> Create(const BufferPoolOptions& options);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of `size` bytes (uninitialised, or the canary), 64-byte aligned. Reuses a
  // free buffer of the same rounded capacity when there is one. ResourceExhausted when it would take the
  // bytes in use past `max_live_bytes`, or when the system has no memory for it.
  absl::StatusOr<Buffer> Acquire(size_t size);

  // Counts `bytes` as live until the reservation is destroyed; ResourceExhausted, as
  // Acquire, when that would pass `max_live_bytes`. Allocates nothing.
  absl::StatusOr<Reservation> Reserve(size_t bytes);

  // Bytes held in free buffers, and in buffers handed out and not yet returned (pooled
  // buffers by capacity, small ones by size).
  size_t cached_bytes() const;
  size_t live_bytes() const;
  // How many Acquire calls of a pooled size reused a free buffer / mapped a new one.
  int64_t reused() const;
  int64_t mapped() const;

 private:
  friend class Buffer;
  friend class Reservation;
  explicit BufferPool(const BufferPoolOptions& options) : options_(options) {}
  void Release(char* data, size_t size, size_t capacity);
  // Counts `bytes` as live, unless that would pass max_live_bytes. Lock-free: small
  // buffers are charged and released once per item, and a batch may have thousands.
  absl::Status Charge(size_t bytes, size_t requested);

  const BufferPoolOptions options_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, char*> free_ ABSL_GUARDED_BY(mu_);  // by capacity
  size_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<size_t> live_bytes_{0};
  int64_t reused_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t mapped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_BUFFER_POOL_H_
