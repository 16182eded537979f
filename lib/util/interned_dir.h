// InternedDir: one shared copy of each directory name, for the databases of
// a process that mostly live in a few directories (issue 20: a full path
// per database cost 64 heap bytes more than its file name alone). An
// InternedDir is a counted reference to the name; the last one gone frees it.
//
// Thread-safety: one InternedDir is not modified concurrently; making and
// dropping them may happen on any thread (one process-wide lock).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace replite {

class InternedDir {
 public:
  InternedDir() = default;
  explicit InternedDir(std::string_view dir);
  InternedDir(InternedDir&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  InternedDir& operator=(InternedDir&& o) noexcept;
  InternedDir(const InternedDir&) = delete;
  InternedDir& operator=(const InternedDir&) = delete;
  ~InternedDir();

  const std::string& str() const;  // "" when empty
  // Heap bytes of every name interned in the process (its table included).
  static uint64_t HeapBytes();

  struct Entry;  // (defined and used in interned_dir.cc only)

 private:
  Entry* e_ = nullptr;
};

}  // namespace replite
