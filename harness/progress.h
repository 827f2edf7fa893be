#pragma once
// Progress of a matrix run weighted by the work of each cell: the ETA of
// `imbench run` and `imbench attack` counts what the remaining cells cost
// (gradient evaluations = examples x EOT samples x the attack's budget), not
// how many remain. Torch-free, with an injectable clock for tests.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace imbench::harness {

/// Gradient evaluations one example costs in a cell: EOT samples (1 for a
/// deterministic model) x the product of the attack's budget options (steps x
/// restarts, steps x binary-search steps, ...; FGSM: 1). Score-based attacks
/// (Square) count a query as a third of a gradient evaluation (one forward
/// pass instead of a forward and a backward pass). `effective_options` are the
/// attack's options with defaults filled in (Attack::options_json()).
double work_per_example(const std::vector<std::string>& budget_options, const std::string& effective_options_json,
                        int64_t eot_samples, bool gradient_free);

/// "45s", "3m07s", "1h12m".
std::string format_duration(double seconds);

/// Where a progress line goes: redrawn in place on a terminal; in a log, a
/// plain "progress: ..." line at most every 30 s. Shared by run, attack and eval.
class ProgressLine {
 public:
  /// `tty`: stderr is a terminal; `clock`: seconds, monotonic.
  ProgressLine(bool tty, std::function<double()> clock);
  void show(const std::string& line);
  /// Clears a live line (terminal only) before other output.
  void clear() const;
  bool tty() const { return tty_; }

 private:
  bool tty_;
  std::function<double()> clock_;
  double last_log_;
};

class ProgressMeter {
 public:
  struct Cell {
    double work_per_example = 1;  ///< see work_per_example()
    int64_t examples = 0;          ///< examples the cell would attack with nothing removed by the cascade
    bool cascaded = false;         ///< a later attack of a cascade: runs on the survivors only
  };
  using Clock = std::function<double()>;  ///< seconds, monotonic

  ProgressMeter(std::vector<Cell> cells, Clock clock);

  /// Total estimated work (gradient evaluations) before anything ran.
  double estimated_work() const;
  /// Cell i starts and will attack `examples` examples (the cascade's survivors).
  void start(std::size_t i, int64_t examples);
  /// `done` of the current cell's `total` examples are finished.
  void update(int64_t done, int64_t total);
  /// Cell i is finished (or was finished earlier and kept: skipped = true, it then costs nothing).
  void finish(std::size_t i, bool skipped = false);

  /// Share of the estimated work done, in [0, 1].
  double fraction_done() const;
  /// Seconds left: time spent per unit of work so far x the work left; none before any work was timed.
  std::optional<double> eta_seconds() const;
  /// "cells 3/40, 12% of the work, 2.1 M gradient evaluations/s, elapsed 5s, ETA 37s".
  std::string summary(std::size_t cells_done) const;

 private:
  double remaining_work() const;
  double cell_work(std::size_t i) const;

  std::vector<Cell> cells_;
  std::vector<int> state_;  // 0 waiting, 1 running, 2 finished
  std::vector<int64_t> actual_examples_;
  Clock clock_;
  double start_ = 0, work_done_ = 0, current_done_ = 0;
  std::size_t current_ = 0;
  bool running_ = false;
  double cascade_ratio_sum_ = 0;
  int64_t cascade_ratio_n_ = 0;
};

}  // namespace imbench::harness
