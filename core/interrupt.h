#pragma once
/// Stopping cleanly on SIGINT and SIGTERM (`imbench run`, `attack`, `train`).
///
/// The handler only records the signal. Long loops call stop_point() between
/// units of work (attack gradients and queries, evaluation and training
/// batches), which throws Interrupted once a signal has arrived. A write in
/// progress therefore always finishes (every file is replaced atomically,
/// core/atomic_file.h), and the unit in progress (a cell, an epoch) is
/// discarded. Each layer adds what it kept (harness: the cells in the results
/// file; training: the state of the last finished epoch); cli/main.cpp prints
/// the one line and exits with 128 + the signal (130 for SIGINT, 143 for
/// SIGTERM). A second signal stops the process at once (the default action).
///
/// Testing hook, for deterministic kill and signal tests
/// (tests/cli_harness.sh, tests/cli_kill_soak.sh, tests/cli_signals.sh):
/// IMBENCH_TEST_RAISE=SIG:EVENT:N makes the process raise SIG (INT, TERM or
/// KILL) on itself at the N-th EVENT it reaches: `step` (a stop point),
/// `write` (a step of the atomic writer that needs disk space: open, write,
/// fsync, close, so a file is half written), `save` (a file replaced), or
/// `any` (all three counted together). Events are counted in the order the
/// program reaches them, so a given N is the same moment on every machine.
#include <exception>
#include <string>

namespace imbench {

/// Thrown by stop_point() after SIGINT or SIGTERM; not an Error, so that no
/// handler of runtime errors swallows it on the way to cli/main.cpp.
class Interrupted : public std::exception {
 public:
  /// `kept`: what is on disk to resume from ("" = nothing); `resumable`:
  /// whether running the same command again continues from it.
  Interrupted(int signal, std::string kept, bool resumable);
  int signal() const noexcept { return signal_; }
  int exit_code() const noexcept { return 128 + signal_; }
  const std::string& kept() const noexcept { return kept_; }
  bool resumable() const noexcept { return resumable_; }
  /// "interrupted by SIGINT: kept ...; run the same command again to resume"
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  int signal_;
  std::string kept_;
  bool resumable_;
  std::string what_;
};

/// Installs the SIGINT and SIGTERM handlers (the commands that call
/// stop_point() in all their long loops: run, attack, train).
void install_stop_handlers();

/// 0, or the first SIGINT/SIGTERM received since install_stop_handlers().
int stop_signal() noexcept;

/// Throws Interrupted(stop_signal(), "", false) once a signal has arrived.
/// Cheap (an atomic load), so it may run at every gradient.
void stop_point();

/// "SIGINT", "SIGTERM", "SIGKILL", else "signal N".
std::string signal_name(int signal);

/// Testing hook (see above): counts one event of the atomic writer.
enum class TestEvent { kStep, kWrite, kSave };
void test_event(TestEvent event);

}  // namespace imbench
