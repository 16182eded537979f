#include "replica/manifest.h"

#include <sstream>

#include "format/layout.h"

namespace replite {

std::string EncodeManifest(const Manifest& m) {
  std::ostringstream o;
  o << "replite-manifest " << kManifestVersion << "\n";
  o << "page_size " << m.page_size << "\n";
  for (const auto& g : m.generations) o << "generation " << g.id << " " << g.first_txid << " " << g.created_ms << "\n";
  for (const auto& id : m.deleting) o << "deleting " << id << "\n";
  return o.str();
}

Status DecodeManifest(const std::string& text, Manifest* out) {
  *out = Manifest();
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || (line != "replite-manifest 1" && line != "replite-manifest 2"))
    return Status::Corruption("manifest: unknown format (first line '" + line.substr(0, 40) +
                              "'; written by a newer replite?)");
  out->version = line.back() == '1' ? 1 : 2;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "page_size") {
      ls >> out->page_size;
    } else if (word == "generation") {
      GenerationEntry g;
      ls >> g.id >> g.first_txid >> g.created_ms;
      uint64_t dummy;
      if (ls.fail() || !ParseHex16(g.id, &dummy)) return Status::Corruption("manifest: bad generation line '" + line + "'");
      out->generations.push_back(g);
    } else if (word == "deleting") {
      std::string id;
      ls >> id;
      uint64_t dummy;
      if (ls.fail() || !ParseHex16(id, &dummy)) return Status::Corruption("manifest: bad deleting line '" + line + "'");
      out->deleting.push_back(id);
    }  // unknown words: newer writers may add fields; ignore them
  }
  return Status::OK();
}

}  // namespace replite
