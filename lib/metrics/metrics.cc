#include "metrics/metrics.h"

#include <cstdio>

namespace replite {

Metrics::Metrics() = default;

void Metrics::Counter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> l(mu_);
  families_[name].help = help;
  families_[name].type = "counter";
}

void Metrics::Gauge(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> l(mu_);
  families_[name].help = help;
  families_[name].type = "gauge";
}

void Metrics::Histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  std::lock_guard<std::mutex> l(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "histogram";
  f.bounds = std::move(bounds);
}

std::string Metrics::LabelText(const Labels& labels) {
  std::string s;
  for (const auto& [k, v] : labels) {
    if (!s.empty()) s += ",";
    s += k + "=\"";
    for (char c : v) {
      if (c == '"' || c == '\\') s += '\\';
      if (c == '\n') {
        s += "\\n";
        continue;
      }
      s += c;
    }
    s += "\"";
  }
  return s;
}

void Metrics::Add(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second.values[LabelText(labels)] += v;
}

void Metrics::Set(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second.values[LabelText(labels)] = v;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  Hist& h = it->second.hists[LabelText(labels)];
  if (h.buckets.empty()) h.buckets.assign(it->second.bounds.size(), 0);
  for (size_t i = 0; i < it->second.bounds.size(); i++)
    if (v <= it->second.bounds[i]) h.buckets[i]++;
  h.count++;
  h.sum += v;
}

double Metrics::Value(const std::string& name, const Labels& labels) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto v = it->second.values.find(LabelText(labels));
  return v == it->second.values.end() ? 0 : v->second;
}

size_t Metrics::series() {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (const auto& [name, f] : families_) n += f.values.size() + f.hists.size() * (f.bounds.size() + 3);
  return n;
}

static std::string Num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::string Metrics::Render() {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, v] : f.values) out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + Num(v) + "\n";
    for (const auto& [labels, h] : f.hists) {
      const std::string sep = labels.empty() ? "" : ",";
      for (size_t i = 0; i < f.bounds.size(); i++)
        out += name + "_bucket{" + labels + sep + "le=\"" + Num(f.bounds[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
      out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
      out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + Num(h.sum) + "\n";
      out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace replite
