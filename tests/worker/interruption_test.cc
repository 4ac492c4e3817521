// When an attempt that an interruption notice reached ended Interrupted (it runs again elsewhere,
// without its model uploaded) and when it completed (worker/agent_impl.h, agent_detail). The
// report (PollTrials' ExitReport) and the upload (UploadOnExit) judge by the same function: a
// soak once found a training job reported Completed whose upload had judged it interrupted, and
// its model.tar.gz was missing.
#include "worker/agent_impl.h"

#include <gtest/gtest.h>

#include <csignal>

namespace hpo::worker {
namespace {

ExitInfo Exit(int code, int signal, bool stopped_by_us) {
  ExitInfo e;
  e.exit_code = code;
  e.signal = signal;
  e.stopped_by_us = stopped_by_us;
  return e;
}

TEST(Interruption, AProgramThatEndedByItselfAsTheNoticeCameCompleted) {
  EXPECT_FALSE(agent_detail::EndedInterrupted(Exit(0, 0, false), true)) << "exit 0, not stopped: it completed";
  EXPECT_FALSE(agent_detail::EndedInterrupted(Exit(1, 0, false), true)) << "its own failure, not the notice";
}

TEST(Interruption, AProgramStoppedByTheNoticeOrBySigtermFromOutsideWasInterrupted) {
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(0, 0, true), true)) << "saved and exited 0 on the stop";
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(-1, SIGKILL, true), true)) << "killed after its grace period";
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(-1, SIGTERM, false), true)) << "a batch system's SIGTERM";
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(143, 0, false), true)) << "a shell's exit after SIGTERM";
}

// The signal that stops the worker's process had come when the program's end was noticed (a
// batch system signals them all at once): however it exited, the signal ended it, unless hpo had
// stopped it first for a reason of its own (a stop a user asked for ends Stopped).
TEST(Interruption, AProgramThatEndedAfterTheWorkersOwnSignalCameWasInterrupted) {
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(0, 0, false), false, true)) << "saved on SIGTERM, exited 0";
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(1, 0, false), false, true)) << "failed on the signal";
  EXPECT_TRUE(agent_detail::EndedInterrupted(Exit(-1, SIGTERM, false), false, true));
  EXPECT_FALSE(agent_detail::EndedInterrupted(Exit(0, 0, true), false, true)) << "hpo stopped it: its own reason";
  EXPECT_FALSE(agent_detail::EndedInterrupted(Exit(0, 0, false), false, false)) << "no signal: it completed";
}

TEST(Interruption, WithoutANoticeNothingIsInterrupted) {
  for (const ExitInfo& e : {Exit(0, 0, true), Exit(-1, SIGTERM, false), Exit(143, 0, false), Exit(0, 0, false)}) {
    EXPECT_FALSE(agent_detail::EndedInterrupted(e, false));
  }
  EXPECT_TRUE(agent_detail::OutsideTerm(Exit(-1, SIGTERM, false)));
  EXPECT_TRUE(agent_detail::OutsideTerm(Exit(143, 0, false)));
  EXPECT_FALSE(agent_detail::OutsideTerm(Exit(-1, SIGTERM, true))) << "hpo's own stop";
  EXPECT_FALSE(agent_detail::OutsideTerm(Exit(0, 0, false)));
}

}  // namespace
}  // namespace hpo::worker
