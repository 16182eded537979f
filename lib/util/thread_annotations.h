// Clang thread-safety annotations (-Wthread-safety): which mutex guards a
// field, which lock a function requires or takes, checked at compile time
// by the clang stage (scripts/thread_safety.sh). Other compilers see no-ops.
//
// libstdc++'s std::mutex carries no annotations, so code that wants the
// checks uses replite::Mutex / MutexLock / SharedMutex below: thin wrappers
// of the std types that are "capabilities" to the analysis.
//
// Thread-safety: Mutex and SharedMutex are what they wrap.
#pragma once

#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define REPLITE_TSA(x) __attribute__((x))
#else
#define REPLITE_TSA(x)
#endif

#define CAPABILITY(x) REPLITE_TSA(capability(x))
#define SCOPED_CAPABILITY REPLITE_TSA(scoped_lockable)
#define GUARDED_BY(x) REPLITE_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) REPLITE_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) REPLITE_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) REPLITE_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) REPLITE_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) REPLITE_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) REPLITE_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) REPLITE_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) REPLITE_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) REPLITE_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) REPLITE_TSA(release_generic_capability(__VA_ARGS__))
#define EXCLUDES(...) REPLITE_TSA(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) REPLITE_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS REPLITE_TSA(no_thread_safety_analysis)

namespace replite {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  // For the analysis: the caller holds this mutex (no runtime check).
  void AssertHeld() const REPLITE_TSA(assert_capability(this)) {}
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class CAPABILITY("shared_mutex") SharedMutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope; also what a CondVar waits with.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() RELEASE() {}
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() RELEASE() { mu_.unlock(); }

 private:
  SharedMutex& mu_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() RELEASE() { mu_.unlock_shared(); }

 private:
  SharedMutex& mu_;
};

}  // namespace replite
