#include "harness/progress.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace imbench::harness {

double work_per_example(const std::vector<std::string>& budget_options, const std::string& effective_options_json,
                        int64_t eot_samples, bool gradient_free) {
  const auto options = nlohmann::json::parse(effective_options_json);
  double budget = 1;
  for (const auto& key : budget_options)
    if (options.contains(key) && options[key].is_number()) budget *= std::max(1.0, options[key].get<double>());
  if (gradient_free) budget /= 3;
  return budget * static_cast<double>(std::max<int64_t>(1, eot_samples));
}

std::string format_duration(double s) {
  if (!(s >= 0)) return "?";
  s = std::round(s);
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::floor(std::fmod(s, 60)));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
}

ProgressMeter::ProgressMeter(std::vector<Cell> cells, Clock clock)
    : cells_(std::move(cells)), state_(cells_.size(), 0), actual_examples_(cells_.size(), -1), clock_(std::move(clock)) {
  start_ = clock_();
}

double ProgressMeter::cell_work(std::size_t i) const {
  const auto& c = cells_[i];
  double examples = static_cast<double>(c.examples);
  if (actual_examples_[i] >= 0) {
    examples = static_cast<double>(actual_examples_[i]);
  } else if (c.cascaded && cascade_ratio_n_ > 0) {
    // Not started: later attacks of a cascade see the share of examples that
    // such cells have seen so far.
    examples *= cascade_ratio_sum_ / static_cast<double>(cascade_ratio_n_);
  }
  return examples * c.work_per_example;
}

double ProgressMeter::estimated_work() const {
  double w = 0;
  for (std::size_t i = 0; i < cells_.size(); ++i) w += cells_[i].examples * cells_[i].work_per_example;
  return w;
}

void ProgressMeter::start(std::size_t i, int64_t examples) {
  if (i >= cells_.size()) return;
  actual_examples_[i] = examples;
  if (cells_[i].cascaded && cells_[i].examples > 0) {
    cascade_ratio_sum_ += static_cast<double>(examples) / static_cast<double>(cells_[i].examples);
    ++cascade_ratio_n_;
  }
  state_[i] = 1;
  current_ = i;
  current_done_ = 0;
  running_ = true;
}

void ProgressMeter::update(int64_t done, int64_t total) {
  if (!running_) return;
  current_done_ = total > 0 ? cell_work(current_) * std::clamp(static_cast<double>(done) / total, 0.0, 1.0) : 0;
}

void ProgressMeter::finish(std::size_t i, bool skipped) {
  if (i >= cells_.size()) return;
  if (skipped) {
    actual_examples_[i] = 0;  // kept from an earlier run: no work now
  } else {
    work_done_ += cell_work(i);
  }
  state_[i] = 2;
  running_ = false;
  current_done_ = 0;
}

double ProgressMeter::remaining_work() const {
  double w = 0;
  for (std::size_t i = 0; i < cells_.size(); ++i)
    if (state_[i] != 2) w += cell_work(i);
  return std::max(0.0, w - current_done_);
}

double ProgressMeter::fraction_done() const {
  const double done = work_done_ + current_done_, left = remaining_work();
  return done + left > 0 ? done / (done + left) : 1.0;
}

std::optional<double> ProgressMeter::eta_seconds() const {
  const double done = work_done_ + current_done_;
  const double elapsed = clock_() - start_;
  if (done <= 0 || elapsed <= 0) return std::nullopt;
  return elapsed / done * remaining_work();
}

std::string ProgressMeter::summary(std::size_t cells_done) const {
  const double elapsed = clock_() - start_;
  const double done = work_done_ + current_done_;
  const auto eta = eta_seconds();
  std::string rate;
  if (done > 0 && elapsed > 0) {
    const double r = done / elapsed;
    rate = r >= 1e6 ? fmt::format(", {:.1f} M gradient evaluations/s", r / 1e6)
                    : fmt::format(", {:.0f}k gradient evaluations/s", r / 1e3);
  }
  return fmt::format("cells {}/{}, {:.0f}% of the work{}, elapsed {}, ETA {}", cells_done, cells_.size(),
                     100 * fraction_done(), rate, format_duration(elapsed), eta ? format_duration(*eta) : "?");
}

ProgressLine::ProgressLine(bool tty, std::function<double()> clock)
    : tty_(tty), clock_(std::move(clock)), last_log_(clock_()) {}

void ProgressLine::show(const std::string& line) {
  if (tty_) {
    fmt::print(stderr, "\r\033[K{}", line);
  } else {
    const double now = clock_();
    if (now - last_log_ < 30) return;
    last_log_ = now;
    fmt::print(stderr, "progress: {}\n", line);
  }
  std::fflush(stderr);
}

void ProgressLine::clear() const {
  if (tty_) fmt::print(stderr, "\r\033[K");
}

}  // namespace imbench::harness
