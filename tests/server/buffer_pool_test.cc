// BufferPool on its own: buffers and reservations count against max_live_bytes and give
// their bytes back when they go, a request over the limit is ResourceExhausted naming
// the flag, freed pooled buffers are reused, with fill_with_canary every buffer
// handed out, new or reused, starts as the canary pattern, and new pooled buffers start
// at different offsets within a page (64-byte aligned).
#include "server/buffer_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace actserve {
namespace server {
namespace {

using ::testing::HasSubstr;

constexpr size_t kMiB = size_t{1} << 20;

BufferPoolOptions Limited(size_t max_live_bytes) {
  BufferPoolOptions options;
  options.max_live_bytes = max_live_bytes;
  options.huge_pages = false;
  return options;
}

TEST(BufferPoolTest, BuffersAndReservationsCountAgainstTheLimit) {
  std::shared_ptr<BufferPool> pool = BufferPool::Create(Limited(8 * kMiB));
  absl::StatusOr<Buffer> pooled = pool->Acquire(3 * kMiB);  // 4 MiB: 2 MiB units
  ASSERT_TRUE(pooled.ok()) << pooled.status();
  absl::StatusOr<Buffer> small = pool->Acquire(1000);  // malloc'd, counted by size
  ASSERT_TRUE(small.ok()) << small.status();
  absl::StatusOr<Reservation> scratch = pool->Reserve(2 * kMiB);
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  EXPECT_EQ(pool->live_bytes(), 4 * kMiB + 1000 + 2 * kMiB);

  // 2 MiB more would pass 8 MiB.
  absl::StatusOr<Reservation> over = pool->Reserve(2 * kMiB);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("--max_tensor_memory_bytes"));
  absl::StatusOr<Buffer> over_buffer = pool->Acquire(kMiB);
  EXPECT_EQ(over_buffer.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool->live_bytes(), 4 * kMiB + 1000 + 2 * kMiB) << "a refusal takes nothing";

  // What goes away is given back, and then fits.
  *scratch = Reservation();
  *small = Buffer();
  EXPECT_EQ(pool->live_bytes(), 4 * kMiB);
  EXPECT_TRUE(pool->Reserve(4 * kMiB).ok());
  *pooled = Buffer();
  EXPECT_EQ(pool->live_bytes(), 0u);
  EXPECT_EQ(pool->cached_bytes(), 4 * kMiB);
}

TEST(BufferPoolTest, ABorrowedBufferFreesNothingAndItsSliceIsACopy) {
  std::shared_ptr<BufferPool> pool = BufferPool::Create(Limited(8 * kMiB));
  absl::StatusOr<Buffer> owner = pool->Acquire(64);
  ASSERT_TRUE(owner.ok()) << owner.status();
  std::memcpy(owner->data(), "0123456789", 10);
  {
    Buffer view = Buffer::Borrowed(owner->data() + 2, 5);
    EXPECT_EQ(view.size(), 5u);
    Buffer moved = std::move(view);
    grpc::Slice slice = std::move(moved).ToSlice();
    ASSERT_EQ(slice.size(), 5u);
    EXPECT_NE(slice.begin(), reinterpret_cast<const uint8_t*>(owner->data() + 2));
    owner->data()[2] = 'x';  // the slice keeps its own bytes
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(slice.begin()), slice.size()), "23456");
  }
  EXPECT_EQ(pool->live_bytes(), 64u) << "the views gave nothing back to the pool";
  *owner = Buffer();
  EXPECT_EQ(pool->live_bytes(), 0u);
}

TEST(BufferPoolTest, ZeroMeansUnlimited) {
  std::shared_ptr<BufferPool> pool = BufferPool::Create(Limited(0));
  absl::StatusOr<Reservation> huge = pool->Reserve(size_t{1} << 40);  // nothing allocated
  ASSERT_TRUE(huge.ok()) << huge.status();
  EXPECT_EQ(pool->live_bytes(), size_t{1} << 40);
}

TEST(BufferPoolTest, EveryBufferStartsAsTheCanaryWhenAsked) {
  BufferPoolOptions options = Limited(0);
  options.fill_with_canary = true;
  std::shared_ptr<BufferPool> pool = BufferPool::Create(options);
  for (size_t size : {size_t{13}, 3 * kMiB + 5}) {
    for (int round = 0; round < 2; ++round) {  // new, then reused after being written
      absl::StatusOr<Buffer> buffer = pool->Acquire(size);
      ASSERT_TRUE(buffer.ok()) << buffer.status();
      for (size_t i = 0; i < size; ++i) {
        ASSERT_EQ(buffer->data()[i], kCanary[i % sizeof(kCanary)]) << size << " at " << i;
      }
      std::memset(buffer->data(), 0x41, size);
    }
  }
  EXPECT_GE(pool->reused(), 1);
}

// The streams of a fused pass come from consecutive Acquire calls: each new pooled buffer
// starts at a different offset mod 4 KiB, 64-byte aligned, 64 offsets before one
// repeats; a reused buffer keeps its address; with nothing cached, each release unmaps
// its buffer and the next one is mapped afresh, whole and writable.
TEST(BufferPoolTest, NewBuffersStartAtStaggeredOffsetsWithinAPage) {
  BufferPoolOptions options;
  options.huge_pages = false;
  std::shared_ptr<BufferPool> pool = BufferPool::Create(options);
  std::vector<Buffer> buffers;
  std::set<uintptr_t> offsets;
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<Buffer> buffer = pool->Acquire(kMiB);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    const uintptr_t address = reinterpret_cast<uintptr_t>(buffer->data());
    EXPECT_EQ(address % 64, 0u) << "buffer " << i;
    offsets.insert(address % 4096);
    std::memset(buffer->data(), 1, buffer->size());  // the whole buffer is mapped
    buffers.push_back(*std::move(buffer));
  }
  EXPECT_EQ(offsets.size(), 64u);
  // Four consecutive buffers (x, dy, y, dx) already differ.
  std::set<uintptr_t> first_four;
  for (int i = 0; i < 4; ++i) {
    first_four.insert(reinterpret_cast<uintptr_t>(buffers[i].data()) % 4096);
  }
  EXPECT_EQ(first_four.size(), 4u);

  char* const released = buffers.back().data();
  buffers.pop_back();
  absl::StatusOr<Buffer> reused = pool->Acquire(kMiB);
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_EQ(reused->data(), released);
  EXPECT_EQ(pool->reused(), 1);
  buffers.clear();

  BufferPoolOptions uncached = options;
  uncached.max_cached_bytes = 0;
  std::shared_ptr<BufferPool> unmapping = BufferPool::Create(uncached);
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<Buffer> buffer = unmapping->Acquire(3 * kMiB);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    std::memset(buffer->data(), 2, buffer->size());
  }
  EXPECT_EQ(unmapping->cached_bytes(), 0u);
  EXPECT_EQ(unmapping->mapped(), 8);
}

}  // namespace
}  // namespace server
}  // namespace actserve
