#include "core/interrupt.h"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace imbench {
namespace {

// A lock-free atomic int: safe to store from a signal handler.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int sig) {
  int none = 0;
  g_signal.compare_exchange_strong(none, sig);
  // The next SIGINT or SIGTERM takes the default action: stop at once.
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGINT, &dfl, nullptr);
  ::sigaction(SIGTERM, &dfl, nullptr);
}

struct RaiseHook {
  int signal = 0;  // 0: no hook
  int event = -1;  // a TestEvent, or -1 for any
  long at = 0;
};

// IMBENCH_TEST_RAISE=SIG:EVENT:N; a malformed value ends the process with one line (exit 2).
RaiseHook parse_hook() {
  RaiseHook h;
  const char* v = std::getenv("IMBENCH_TEST_RAISE");
  if (!v || !*v) return h;
  char sig[16] = {}, event[16] = {};
  long n = 0;
  char tail = 0;
  const bool parsed = std::sscanf(v, "%15[A-Z]:%15[a-z]:%ld%c", sig, event, &n, &tail) == 3 && n >= 1;
  const int s = std::strcmp(sig, "INT") == 0    ? SIGINT
                : std::strcmp(sig, "TERM") == 0 ? SIGTERM
                : std::strcmp(sig, "KILL") == 0 ? SIGKILL
                                                : 0;
  const int e = std::strcmp(event, "step") == 0    ? static_cast<int>(TestEvent::kStep)
                : std::strcmp(event, "write") == 0 ? static_cast<int>(TestEvent::kWrite)
                : std::strcmp(event, "save") == 0  ? static_cast<int>(TestEvent::kSave)
                : std::strcmp(event, "any") == 0   ? -1
                                                   : -2;
  if (!parsed || s == 0 || e == -2) {
    fmt::print(stderr,
               "imbench: error: IMBENCH_TEST_RAISE={}: expected SIG:EVENT:N with SIG INT, TERM or KILL, EVENT step, "
               "write, save or any, and N >= 1\n",
               v);
    std::exit(2);
  }
  h.signal = s;
  h.event = e;
  h.at = n;
  return h;
}

}  // namespace

Interrupted::Interrupted(int signal, std::string kept, bool resumable)
    : signal_(signal), kept_(std::move(kept)), resumable_(resumable) {
  what_ = fmt::format("interrupted by {}: ", signal_name(signal_));
  what_ += kept_.empty() ? "nothing was kept" : "kept " + kept_;
  what_ += resumable_ ? "; run the same command again to resume" : "; running the same command again starts over";
}

void install_stop_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in flight go on; the loops look at the flag
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() noexcept { return g_signal.load(std::memory_order_relaxed); }

void stop_point() {
  test_event(TestEvent::kStep);
  if (const int s = stop_signal()) throw Interrupted(s, "", false);
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    default: return fmt::format("signal {}", signal);
  }
}

void test_event(TestEvent event) {
  static const RaiseHook hook = parse_hook();
  if (hook.signal == 0 || (hook.event >= 0 && hook.event != static_cast<int>(event))) return;
  static std::atomic<long> count{0};
  if (++count == hook.at) ::raise(hook.signal);
}

}  // namespace imbench
