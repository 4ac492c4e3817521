#include "cli/local_state.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"
#include "coordinator/job_store.h"

namespace hpo::cli {

struct LocalState::Impl {
  std::string db;
  std::unique_ptr<coordinator::SqliteJobStore> store;
  std::unique_ptr<coordinator::CoordinatorCore> core;
  std::unique_ptr<coordinator::Dispatcher> dispatcher;  // never bound: only its WithCore is used
  std::unique_ptr<coordinator::InProcessSource> source;
};

LocalState::LocalState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalState::~LocalState() = default;

Result<std::unique_ptr<LocalState>> LocalState::Open(const std::string& state_dir) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  impl->db = (fs::path(state_dir) / "hpo.db").string();
  std::error_code ec;
  if (!fs::is_regular_file(impl->db, ec)) {
    return Status::InvalidArgument("--state-dir " + state_dir + ": no hpo.db there (hpo run prints its state "
                                   "directory when it ends; hpo coordinator uses the one of its --state-dir)");
  }
  // A reading command prints what it read: the core's notes while it loads (which GP engine a
  // Bayesian job would use, ...) are not for this reader.
  spdlog::set_level(spdlog::level::warn);
  auto store = coordinator::SqliteJobStore::OpenReadOnly(impl->db);
  if (!store.ok()) return store.status();
  impl->store = std::move(store).value();
  coordinator::CoreOptions co;  // what the core loads does not depend on its options
  impl->core = std::make_unique<coordinator::CoordinatorCore>(impl->store.get(), co);
  if (Status s = impl->core->LoadStatus(); !s.ok()) return s;
  coordinator::DispatcherOptions dopt;
  dopt.log = [](const std::string&) {};  // nothing is dispatched: nothing to say
  impl->dispatcher = std::make_unique<coordinator::Dispatcher>(impl->core.get(), dopt);
  impl->source = std::make_unique<coordinator::InProcessSource>(*impl->dispatcher);
  return std::unique_ptr<LocalState>(new LocalState(std::move(impl)));
}

coordinator::dashboard::Source& LocalState::source() { return *impl_->source; }

Result<proto::TuningJobDocument> LocalState::Document(const std::string& job) {
  return impl_->dispatcher->WithCore([&](coordinator::CoordinatorCore& c) { return c.DescribeDocument(job); });
}

const std::string& LocalState::db_path() const { return impl_->db; }

}  // namespace hpo::cli
