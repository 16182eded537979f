// Metrics: one registry per Replicator. Series are keyed by metric name and
// a small label set (metrics group, store operation, result) chosen so that
// their number never depends on the number of databases. Rendered as
// Prometheus text exposition format 0.0.4.
//
// Thread-safety: all methods are safe to call concurrently. Updates take a
// short mutex; they happen once per job or request, not per page.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace replite {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  Metrics();
  // Declares a family (help text and type); undeclared names are refused.
  void Counter(const std::string& name, const std::string& help);
  void Gauge(const std::string& name, const std::string& help);
  void Histogram(const std::string& name, const std::string& help, std::vector<double> bounds);

  void Add(const std::string& name, const Labels& labels, double v = 1);
  void Set(const std::string& name, const Labels& labels, double v);
  void Observe(const std::string& name, const Labels& labels, double v);
  // Value of one counter/gauge series (tests).
  double Value(const std::string& name, const Labels& labels);
  std::string Render();
  size_t series();

 private:
  struct Hist {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string help, type;
    std::vector<double> bounds;
    std::map<std::string, double> values;  // label text -> value
    std::map<std::string, Hist> hists;
  };
  static std::string LabelText(const Labels& l);
  std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace replite
