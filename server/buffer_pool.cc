// See buffer_pool.h.
#include "server/buffer_pool.h"

#include <sys/mman.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace server {
namespace {

// Pooled capacities are multiples of a huge page, so that buffers of nearby sizes share
// a free list and every pooled buffer can be backed by huge pages.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;
constexpr size_t kCacheLine = 64;
// 17 cache lines: odd, so the offsets run through all 64 lines of a page before repeating.
constexpr size_t kStaggerStep = 17 * kCacheLine;

size_t RoundUp(size_t size, size_t unit) { return (size + unit - 1) / unit * unit; }

// Where within its mapping the n-th mapped buffer starts: the offsets step by 17 cache
// lines mod 4 KiB, so consecutive buffers (a request's input and grad_output, the result
// buffers) start at different offsets within a page -- 64 distinct offsets, 64-byte
// aligned. When every stream of a fused pass starts at the same offset mod 4 KiB, loads
// of one stream alias the pending stores of another and all of them compete for the same
// cache sets: the 2-thread copy ran at ~0.6x of its staggered speed that way
// (bench/README.md, "Buffer layout").
size_t StaggerOffset(int64_t sequence) {
  return static_cast<size_t>(sequence % (kPage / kCacheLine)) * kStaggerStep % kPage;
}

// `capacity` bytes at `offset` (< kPage) past a kHugePage boundary, freshly mapped (zero
// pages, not yet touched); nullptr when the system has no address space or memory for
// them. Unmap with Unmap(data, capacity).
char* MapAligned(size_t capacity, size_t offset, bool huge_pages) {
  const size_t length = capacity + kPage;
  const size_t reserve = length + kHugePage;
  void* mapped = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t aligned = RoundUp(start, kHugePage);
  if (aligned > start) munmap(mapped, aligned - start);
  const uintptr_t end = start + reserve;
  if (end > aligned + length) {
    munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  }
  // Advice only: without THP support the kernel ignores it, and 4 KiB pages are used.
  if (huge_pages) madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);
  return reinterpret_cast<char*>(aligned) + offset;
}

// The mapping of a buffer from MapAligned: it starts at the kHugePage boundary below.
void Unmap(char* data, size_t capacity) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(data) / kHugePage * kHugePage;
  munmap(reinterpret_cast<void*>(start), capacity + kPage);
}

// What a slice made by Buffer::ToSlice carries, to give the memory back.
struct SliceOwner {
  Buffer buffer;
};

void SliceDestroy(void* user_data) { delete static_cast<SliceOwner*>(user_data); }

void FillWithCanary(char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) data[i] = kCanary[i % sizeof(kCanary)];
}

absl::Status OutOfSystemMemory(size_t size) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the server has no memory for a ", size, "-byte tensor; retry later"));
}

}  // namespace

Buffer::~Buffer() { Reset(); }

Buffer::Buffer(Buffer&& other) noexcept
    : pool_(std::move(other.pool_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = std::move(other.pool_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void Buffer::Reset() {
  if (data_ != nullptr && pool_ != nullptr) pool_->Release(data_, size_, capacity_);
  pool_.reset();
  data_ = nullptr;
  size_ = capacity_ = 0;
}

Reservation::~Reservation() { Reset(); }

Reservation::Reservation(Reservation&& other) noexcept
    : pool_(std::move(other.pool_)), bytes_(std::exchange(other.bytes_, 0)) {}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = std::move(other.pool_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void Reservation::Reset() {
  if (pool_ != nullptr) pool_->live_bytes_.fetch_sub(bytes_, std::memory_order_relaxed);
  pool_.reset();
  bytes_ = 0;
}

grpc::Slice Buffer::ToSlice() && {
  if (size_ == 0) {
    Reset();
    return grpc::Slice();
  }
  if (pool_ == nullptr) {  // borrowed: the memory is not ours to hand over
    grpc::Slice copy(data_, size_);
    Reset();
    return copy;
  }
  char* data = data_;
  const size_t size = size_;
  auto* owner = new SliceOwner{std::move(*this)};
  return grpc::Slice(data, size, &SliceDestroy, owner);
}

std::shared_ptr<BufferPool> BufferPool::Create(const BufferPoolOptions& options) {
  return std::shared_ptr<BufferPool>(new BufferPool(options));
}

BufferPool::~BufferPool() {
  // Every Buffer holds a reference, so only free buffers are left.
  for (const auto& [capacity, data] : free_) Unmap(data, capacity);
}

absl::Status BufferPool::Charge(size_t bytes, size_t requested) {
  const size_t limit = options_.max_live_bytes;
  size_t live = live_bytes_.load(std::memory_order_relaxed);
  do {
    if (limit > 0 && (bytes > limit || live > limit - bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tensor memory of the calls in flight is at its limit: ", live,
          " bytes in use, ", requested, " more needed, limit ", limit,
          " (--max_tensor_memory_bytes); retry later or send smaller requests"));
    }
  } while (!live_bytes_.compare_exchange_weak(live, live + bytes, std::memory_order_relaxed));
  return absl::OkStatus();
}

absl::StatusOr<Buffer> BufferPool::Acquire(size_t size) {
  if (size == 0) return Buffer();
  char* data = nullptr;
  size_t capacity = 0;  // 0 marks a malloc'd buffer
  size_t offset = 0;    // of a new mapping: StaggerOffset
  if (size < options_.min_pooled_bytes) {
    if (absl::Status charged = Charge(size, size); !charged.ok()) return charged;
    data = static_cast<char*>(std::malloc(size));
    if (data == nullptr) {
      live_bytes_.fetch_sub(size, std::memory_order_relaxed);
      return OutOfSystemMemory(size);
    }
  } else {
    capacity = RoundUp(size, kHugePage);
    {
      absl::MutexLock lock(&mu_);
      // The smallest free buffer that fits, unless it would waste more than half.
      auto found = free_.lower_bound(capacity);
      if (found != free_.end() && found->first <= 2 * capacity) {
        if (absl::Status charged = Charge(found->first, size); !charged.ok()) return charged;
        data = found->second;
        capacity = found->first;
        free_.erase(found);
        cached_bytes_ -= capacity;
        ++reused_;
      } else {
        if (absl::Status charged = Charge(capacity, size); !charged.ok()) return charged;
        offset = StaggerOffset(mapped_);
        ++mapped_;
      }
    }
    if (data == nullptr) {
      data = MapAligned(capacity, offset, options_.huge_pages);
      if (data == nullptr) {
        live_bytes_.fetch_sub(capacity, std::memory_order_relaxed);
        return OutOfSystemMemory(size);
      }
    }
  }
  if (options_.fill_with_canary) FillWithCanary(data, size);
  return Buffer(shared_from_this(), data, size, capacity);
}

absl::StatusOr<Reservation> BufferPool::Reserve(size_t bytes) {
  if (bytes == 0) return Reservation();
  if (absl::Status charged = Charge(bytes, bytes); !charged.ok()) return charged;
  return Reservation(shared_from_this(), bytes);
}

void BufferPool::Release(char* data, size_t size, size_t capacity) {
  if (capacity == 0) {
    std::free(data);
    live_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return;
  }
  live_bytes_.fetch_sub(capacity, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&mu_);
    if (cached_bytes_ + capacity <= options_.max_cached_bytes) {
      free_.emplace(capacity, data);
      cached_bytes_ += capacity;
      return;
    }
  }
  Unmap(data, capacity);
}

size_t BufferPool::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

size_t BufferPool::live_bytes() const { return live_bytes_.load(std::memory_order_relaxed); }

int64_t BufferPool::reused() const {
  absl::MutexLock lock(&mu_);
  return reused_;
}

int64_t BufferPool::mapped() const {
  absl::MutexLock lock(&mu_);
  return mapped_;
}

}  // namespace server
}  // namespace actserve
