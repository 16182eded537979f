#include "util/flat_id_table.h"

namespace replite {

void FlatIdTable::Grow() {
  std::vector<Entry> old;
  old.swap(e_);
  e_.assign(old.empty() ? 16 : old.size() * 2, Entry{});
  const size_t mask = e_.size() - 1;
  for (const Entry& x : old) {
    if (x.id == kNone) continue;
    size_t i = x.hash & mask;
    while (e_[i].id != kNone) i = (i + 1) & mask;
    e_[i] = x;
  }
}

void FlatIdTable::Insert(uint32_t hash, uint32_t id) {
  if ((n_ + 1) * 4 > e_.size() * 3) Grow();
  const size_t mask = e_.size() - 1;
  size_t i = hash & mask;
  while (e_[i].id != kNone) i = (i + 1) & mask;
  e_[i] = Entry{hash, id};
  n_++;
}

bool FlatIdTable::Erase(uint32_t hash, uint32_t id) {
  if (n_ == 0) return false;
  const size_t mask = e_.size() - 1;
  size_t i = hash & mask;
  while (e_[i].id != kNone && !(e_[i].hash == hash && e_[i].id == id)) i = (i + 1) & mask;
  if (e_[i].id == kNone) return false;
  // Backward shift: move up every later entry of the run whose home is not
  // in (i, j], so that no probe sequence crosses an empty slot it did not
  // cross before.
  for (size_t j = (i + 1) & mask; e_[j].id != kNone; j = (j + 1) & mask) {
    const size_t home = e_[j].hash & mask;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    e_[i] = e_[j];
    i = j;
  }
  e_[i] = Entry{};
  n_--;
  return true;
}

}  // namespace replite
