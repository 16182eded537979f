// RefPtr<T>: a counted reference to a T that carries its own count (a
// RefCount member named `refs`), for objects kept by the 100,000: one
// pointer per reference and a 4-byte count inside the object, where a
// std::shared_ptr costs two pointers per reference and a control block
// (make_shared's adds 16 bytes to every object: issue 20). No weak
// references. The last reference deletes the object.
//
// Thread-safety: like std::shared_ptr: one RefPtr is not modified
// concurrently; copies of it may be made and dropped on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace replite {

// The count inside a counted object. Copying the object does not copy its
// references: the copy starts unreferenced.
struct RefCount {
  mutable std::atomic<uint32_t> n{0};
  RefCount() = default;
  RefCount(const RefCount&) {}
  RefCount& operator=(const RefCount&) { return *this; }
};

template <typename T>
class RefPtr {
 public:
  RefPtr() = default;
  RefPtr(std::nullptr_t) {}  // NOLINT: like a null shared_ptr
  // Takes a reference to `p` (new or already referenced).
  explicit RefPtr(T* p) : p_(p) { Ref(); }
  RefPtr(const RefPtr& o) : p_(o.p_) { Ref(); }
  RefPtr(RefPtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  // A RefPtr<const T> from a RefPtr<T>.
  template <typename U>
  RefPtr(const RefPtr<U>& o) : p_(o.get()) { Ref(); }  // NOLINT
  RefPtr& operator=(const RefPtr& o) {
    RefPtr(o).swap(*this);
    return *this;
  }
  RefPtr& operator=(RefPtr&& o) noexcept {
    RefPtr(std::move(o)).swap(*this);
    return *this;
  }
  ~RefPtr() { Unref(); }

  template <typename... A>
  static RefPtr Make(A&&... a) { return RefPtr(new T(std::forward<A>(a)...)); }

  T* get() const { return p_; }
  T& operator*() const { return *p_; }
  T* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  void reset() { RefPtr().swap(*this); }
  void swap(RefPtr& o) noexcept { std::swap(p_, o.p_); }
  // References held (for a registry that keeps one and prunes what only
  // it still holds).
  uint32_t use_count() const { return p_ ? p_->refs.n.load(std::memory_order_acquire) : 0; }

  friend bool operator==(const RefPtr& a, const RefPtr& b) { return a.p_ == b.p_; }
  friend bool operator!=(const RefPtr& a, const RefPtr& b) { return a.p_ != b.p_; }
  friend bool operator==(const RefPtr& a, std::nullptr_t) { return a.p_ == nullptr; }
  friend bool operator!=(const RefPtr& a, std::nullptr_t) { return a.p_ != nullptr; }

 private:
  void Ref() {
    if (p_) p_->refs.n.fetch_add(1, std::memory_order_relaxed);
  }
  void Unref() {
    if (p_ && p_->refs.n.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p_;
  }
  T* p_ = nullptr;
};

}  // namespace replite
