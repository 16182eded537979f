// Space-separated decimal and hex fields, read in order (what our text
// records, e.g. a saved Position, are made of). std::from_chars instead of
// sscanf: a warm start decodes one saved position per database, and
// sscanf's locale-aware scanning was ~8% of adding 100,000 of them.
// Stricter than sscanf: a value out of its type's range or a sign on an
// unsigned field fails instead of wrapping.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace replite {

class TextFields {
 public:
  explicit TextFields(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  // Skips spaces, then reads one field. False (and nothing read) when the
  // next field is missing or not a number of that type; reading stops at
  // the first character that is not part of it.
  template <typename T>
  bool Number(T* out, int base = 10) {
    Skip();
    auto [next, ec] = std::from_chars(p_, end_, *out, base);
    if (ec != std::errc() || next == p_) return false;
    p_ = next;
    return true;
  }
  // Skips spaces, then reads the characters up to the next space.
  bool Word(std::string_view* out) {
    Skip();
    const char* start = p_;
    while (p_ < end_ && *p_ != ' ') p_++;
    *out = std::string_view(start, size_t(p_ - start));
    return p_ > start;
  }
  bool AtEnd() {
    Skip();
    return p_ == end_;
  }

 private:
  void Skip() {
    while (p_ < end_ && *p_ == ' ') p_++;
  }
  const char* p_;
  const char* end_;
};

}  // namespace replite
