// The CronJob controller on a fake clock against an in-process API server:
// the test moves time to each scheduled instant and reconciles, so a
// five-minute schedule takes no time. Jobs finish when the test says so (no
// Job controller runs here).
#include "controller/cronjob_controller.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "common/cron.h"
#include "controller/controller_fixture.h"

namespace kiso::controller {
namespace {

namespace json = boost::json;
using std::chrono::minutes;
using std::chrono::seconds;

class CronJobTest : public ControllerFixture {
 protected:
  void SetUp() override {
    ControllerFixture::SetUp();
    controller_ = std::make_unique<CronJobController>(client_.get(), &clock_);
    controller_->Start();
  }
  void TearDown() override { controller_.reset(); }

  // A CronJob; the fake wall clock is set to its creation time.
  void Create(const std::string& name, const std::string& schedule,
              const json::object& extra = {}) {
    json::object container{{"name", "c"}, {"image", "busybox"}};
    json::object pod{{"restartPolicy", "Never"}, {"containers", json::array{container}}};
    json::object job_template{{"metadata", json::object{{"labels", json::object{{"app", name}}}}},
                              {"spec", json::object{{"template", json::object{{"spec", pod}}}}}};
    json::object spec{{"schedule", schedule}, {"jobTemplate", job_template}};
    for (auto& [k, v] : extra) spec[k] = v;
    json::value cj = json::object{{"apiVersion", "batch/v1"},
                                  {"kind", "CronJob"},
                                  {"metadata", json::object{{"name", name}}},
                                  {"spec", spec}};
    auto created = client_->Create(R("batch", "cronjobs"), "default", cj);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    auto at = ParseTime(api::GetString(*created, {"metadata", "creationTimestamp"}));
    ASSERT_TRUE(at);
    created_ = *at;
    clock_.SetWall(created_);
  }
  // Moves the wall clock to `at` and reconciles (the controller's own
  // workers do too, on its watch events, never beside this pass; a conflict
  // with a write of theirs is retried as the queue's back-off would).
  void ReconcileAt(CronSchedule::Time at, const std::string& name) {
    // Its cache first catches up with what the API holds (its own status writes too).
    auto now = client_->Get(R("batch", "cronjobs"), "default", name);
    ASSERT_TRUE(now.ok());
    std::string rv(api::GetString(*now, {"metadata", "resourceVersion"}));
    ASSERT_TRUE(Eventually([&] { return controller_->Sees("default/" + name, rv); }));
    clock_.SetWall(at);
    Status s = Status::Ok();
    ASSERT_TRUE(Eventually([&] {
      s = controller_->ReconcileGuarded("default/" + name);
      return s.ok();
    })) << s.ToString();
  }
  static std::string_view First(const json::value& obj,
                                std::initializer_list<std::string_view> list,
                                std::string_view field) {
    const auto* l = api::Find(obj, list);
    if (!l || !l->is_array() || l->get_array().empty()) return "";
    return api::GetString(l->get_array()[0], {field});
  }
  std::vector<json::value> JobsOf(const std::string& name, bool with_finished = true) {
    std::vector<json::value> out;
    auto list = client_->List(R("batch", "jobs"), "default");
    if (!list.ok()) return out;
    for (const auto& j : list->at("items").as_array()) {
      if (api::GetString(j, {"metadata", "labels", "app"}) != name) continue;
      if (!api::GetString(j, {"metadata", "deletionTimestamp"}).empty()) continue;
      if (!with_finished && api::Find(j, {"status", "conditions"})) continue;
      out.push_back(j);
    }
    return out;
  }
  void Finish(const json::value& job, std::string_view as = "Complete") {
    json::object status{
        {"conditions", json::array{json::object{{"type", as}, {"status", "True"}}}},
        {"completionTime",
         FormatRfc3339(WallTime{
             std::chrono::duration_cast<seconds>(clock_.WallNow().time_since_epoch()).count(),
             0})}};
    auto r =
        client_->Patch(R("batch", "jobs"), "default", api::GetString(job, {"metadata", "name"}),
                       client::PatchType::kMerge, json::object{{"status", status}}, "status");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // Each Job's name, creation time and outcome, for failure messages.
  static std::string Describe(const std::vector<json::value>& jobs) {
    std::string out;
    for (const auto& j : jobs) {
      out += fmt::format("{} created {} finished {}; ", api::GetString(j, {"metadata", "name"}),
                         api::GetString(j, {"metadata", "creationTimestamp"}),
                         First(j, {"status", "conditions"}, "type"));
    }
    return out;
  }
  // The next whole five minutes after creation: when "*/5 * * * *" fires.
  CronSchedule::Time Boundary(int n) const {
    auto t = std::chrono::ceil<minutes>(created_ + seconds(1));
    while (std::chrono::duration_cast<minutes>(t.time_since_epoch()).count() % 5 != 0)
      t += minutes(1);
    return t + minutes(5) * n;
  }
  std::string LastScheduleTime(const std::string& name) {
    auto cj = client_->Get(R("batch", "cronjobs"), "default", name);
    return cj.ok() ? std::string(api::GetString(*cj, {"status", "lastScheduleTime"})) : "";
  }
  // Waits until the controller's cache has seen `n` Jobs of `name` (its own
  // writes come back through its informer).
  void SeeJobs(const std::string& name, size_t n) {
    ASSERT_TRUE(Eventually([&] { return JobsOf(name).size() == n; }));
  }

  FakeClock clock_;
  CronSchedule::Time created_;
  std::unique_ptr<CronJobController> controller_;
};

TEST_F(CronJobTest, RunsAtEachScheduledTimeOnceWithTheTemplateAndOwner) {
  Create("every5", "*/5 * * * *");
  ReconcileAt(created_ + seconds(1), "every5");
  EXPECT_TRUE(JobsOf("every5").empty());
  ReconcileAt(Boundary(0) - seconds(1), "every5");
  EXPECT_TRUE(JobsOf("every5").empty());
  ReconcileAt(Boundary(0) + seconds(2), "every5");
  auto jobs = JobsOf("every5");
  ASSERT_EQ(jobs.size(), 1U);
  const auto minutes_since_epoch =
      std::chrono::duration_cast<minutes>(Boundary(0).time_since_epoch()).count();
  EXPECT_EQ(api::GetString(jobs[0], {"metadata", "name"}),
            fmt::format("every5-{}", minutes_since_epoch));
  EXPECT_EQ(First(jobs[0], {"metadata", "ownerReferences"}, "kind"), "CronJob");
  EXPECT_EQ(api::GetString(jobs[0], {"metadata", "annotations",
                                     "batch.kubernetes.io/cronjob-scheduled-timestamp"}),
            FormatInZone(Boundary(0), "UTC"));
  EXPECT_EQ(LastScheduleTime("every5"), FormatInZone(Boundary(0), "UTC"));
  // The same instant again (a cache that lags or not): still one Job.
  ReconcileAt(Boundary(0) + seconds(3), "every5");
  ReconcileAt(Boundary(0) + seconds(4), "every5");
  EXPECT_EQ(JobsOf("every5").size(), 1U);
  auto cj = client_->Get(R("batch", "cronjobs"), "default", "every5");
  ASSERT_TRUE(cj.ok());
  EXPECT_EQ(First(*cj, {"status", "active"}, "name"),
            api::GetString(jobs[0], {"metadata", "name"}));
  // Allow (the default): the next run beside the first.
  SeeJobs("every5", 1);
  ReconcileAt(Boundary(1) + seconds(1), "every5");
  EXPECT_EQ(JobsOf("every5", false).size(), 2U);
}

TEST_F(CronJobTest, ForbidWaitsForTheActiveJobThenRunsTheMissedTime) {
  Create("forbid", "*/5 * * * *", {{"concurrencyPolicy", "Forbid"}});
  ReconcileAt(Boundary(0) + seconds(1), "forbid");
  SeeJobs("forbid", 1);
  ReconcileAt(Boundary(1) + seconds(1), "forbid");
  ASSERT_EQ(JobsOf("forbid").size(), 1U);
  const std::string first(api::GetString(JobsOf("forbid")[0], {"metadata", "name"}));
  Finish(JobsOf("forbid")[0]);
  // Once the first has finished, the missed time runs: by the test's pass or
  // by the controller's own worker on the Job's event, whichever comes first.
  ASSERT_TRUE(Eventually([&] {
    (void)controller_->ReconcileGuarded("default/forbid");
    auto open = JobsOf("forbid", false);
    return open.size() == 1 && api::GetString(open[0], {"metadata", "name"}) != first;
  }));
  // The status follows the Job (whichever pass made it writes it next).
  EXPECT_TRUE(Eventually([&] {
    (void)controller_->ReconcileGuarded("default/forbid");
    return LastScheduleTime("forbid") == FormatInZone(Boundary(1), "UTC");
  })) << LastScheduleTime("forbid");
}

TEST_F(CronJobTest, ReplaceDeletesTheActiveJobForTheNewOne) {
  Create("replace", "*/5 * * * *", {{"concurrencyPolicy", "Replace"}});
  ReconcileAt(Boundary(0) + seconds(1), "replace");
  SeeJobs("replace", 1);
  std::string first(api::GetString(JobsOf("replace")[0], {"metadata", "name"}));
  ReconcileAt(Boundary(1) + seconds(1), "replace");
  auto jobs = JobsOf("replace");
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_NE(api::GetString(jobs[0], {"metadata", "name"}), first);
}

TEST_F(CronJobTest, StartingDeadlineSuspendAndTimeZone) {
  // Missed by more than its deadline: skipped.
  Create("late", "*/5 * * * *", {{"startingDeadlineSeconds", 10}});
  ReconcileAt(Boundary(0) + seconds(30), "late");
  EXPECT_TRUE(JobsOf("late").empty());
  ReconcileAt(Boundary(1) + seconds(5), "late");
  EXPECT_EQ(JobsOf("late").size(), 1U);

  Create("paused", "*/5 * * * *", {{"suspend", true}});
  ReconcileAt(Boundary(2), "paused");
  EXPECT_TRUE(JobsOf("paused").empty());

  // 09:00 in Tokyo is 00:00 UTC.
  Create("tokyo", "0 9 * * *", {{"timeZone", "Asia/Tokyo"}});
  auto midnight = std::chrono::ceil<std::chrono::days>(created_ + seconds(1));
  ReconcileAt(midnight - minutes(1), "tokyo");
  EXPECT_TRUE(JobsOf("tokyo").empty());
  ReconcileAt(midnight + seconds(1), "tokyo");
  auto jobs = JobsOf("tokyo");
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_TRUE(api::GetString(jobs[0], {"metadata", "annotations",
                                       "batch.kubernetes.io/cronjob-scheduled-timestamp"})
                  .ends_with("T09:00:00+09:00"));
}

TEST_F(CronJobTest, KeepsOnlyTheHistoryItIsToldToAndRecordsLastSuccess) {
  Create("history", "*/5 * * * *",
         {{"successfulJobsHistoryLimit", 1}, {"failedJobsHistoryLimit", 0}});
  for (int i = 0; i < 3; ++i) {
    ReconcileAt(Boundary(i) + seconds(1), "history");
    ASSERT_TRUE(Eventually([&] { return JobsOf("history", false).size() == 1; })) << i;
    Finish(JobsOf("history", false)[0], i == 2 ? "Failed" : "Complete");
    ASSERT_TRUE(Eventually([&] { return JobsOf("history", false).empty(); }));
  }
  // Two succeeded (one kept), one failed (none kept).
  Status s = Status::Ok();
  ASSERT_TRUE(Eventually([&] {
    s = controller_->ReconcileGuarded("default/history");
    return s.ok() && JobsOf("history").size() == 1;
  })) << s.ToString()
      << "; jobs: " << Describe(JobsOf("history"));
  auto kept = JobsOf("history");
  EXPECT_EQ(First(kept[0], {"status", "conditions"}, "type"), "Complete");
  auto cj = client_->Get(R("batch", "cronjobs"), "default", "history");
  ASSERT_TRUE(cj.ok());
  EXPECT_FALSE(api::GetString(*cj, {"status", "lastSuccessfulTime"}).empty());
}

}  // namespace
}  // namespace kiso::controller
