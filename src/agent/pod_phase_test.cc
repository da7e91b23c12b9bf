#include "agent/pod_phase.h"

#include <gtest/gtest.h>

namespace kiso::agent {
namespace {

TEST(PodPhaseTest, FollowsTheKubeletsRules) {
  ContainerTally creating{.total = 2, .waiting = 1, .running = 1};
  EXPECT_EQ(PodPhase(creating, true, false, "Always"), "Pending");
  EXPECT_EQ(PodPhase({.total = 1, .running = 1}, false, false, "Always"), "Pending");  // Init.
  EXPECT_EQ(PodPhase({.total = 1}, false, true, "Never"), "Failed");
  EXPECT_EQ(PodPhase({.total = 2, .running = 1, .stopped = 1, .failed = 1}, true, false, "Never"),
            "Running");
  ContainerTally done{.total = 2, .stopped = 2, .succeeded = 2};
  EXPECT_EQ(PodPhase(done, true, false, "Never"), "Succeeded");
  EXPECT_EQ(PodPhase(done, true, false, "OnFailure"), "Succeeded");
  EXPECT_EQ(PodPhase(done, true, false, "Always"), "Running");
  ContainerTally one_failed{.total = 2, .stopped = 2, .succeeded = 1, .failed = 1};
  EXPECT_EQ(PodPhase(one_failed, true, false, "Never"), "Failed");
  EXPECT_EQ(PodPhase(one_failed, true, false, "OnFailure"), "Running");
}

TEST(PodPhaseTest, TerminalPhasesAreFinal) {
  for (const char* to : {"Pending", "Running", "Succeeded", "Failed"}) {
    EXPECT_TRUE(AllowedPhaseTransition("", to));
    EXPECT_EQ(AllowedPhaseTransition("Succeeded", to), std::string_view(to) == "Succeeded");
    EXPECT_EQ(AllowedPhaseTransition("Failed", to), std::string_view(to) == "Failed");
  }
  EXPECT_TRUE(AllowedPhaseTransition("Pending", "Running"));
  EXPECT_FALSE(AllowedPhaseTransition("Running", "Pending"));
  EXPECT_TRUE(AllowedPhaseTransition("Running", "Failed"));
}

}  // namespace
}  // namespace kiso::agent
