#include "test/faults/fault_fixture.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "src/core/event_id.h"

namespace pgfanout::faults {
namespace {

constexpr const char* kSlot = kFaultSlot;

// Target tables made ahead of the sink (it adopts them), with the audit trigger.
constexpr const char* kTargetSchema = R"sql(
  CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, version bigint NOT NULL,
                         balance bigint NOT NULL, pgfanout_version bigint NOT NULL DEFAULT 0,
                         PRIMARY KEY (tenant_id, id));
  CREATE TABLE ledger (tenant_id text NOT NULL, op_id bigint NOT NULL, account_id int NOT NULL,
                       amount bigint NOT NULL, payload text,
                       pgfanout_version bigint NOT NULL DEFAULT 0,
                       PRIMARY KEY (tenant_id, op_id));
  CREATE TABLE fault_audit (seq bigserial PRIMARY KEY, tbl text, op text, tenant text,
                            k bigint, version bigint);
  CREATE FUNCTION fault_audit() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    r record;
  BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'ledger' THEN
      INSERT INTO fault_audit (tbl, op, tenant, k, version)
        VALUES ('ledger', lower(left(TG_OP, 1)), r.tenant_id, r.op_id, 0);
    ELSE
      INSERT INTO fault_audit (tbl, op, tenant, k, version)
        VALUES ('accounts', lower(left(TG_OP, 1)), r.tenant_id, r.id, r.version);
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION fault_audit();
  CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION fault_audit();
)sql";

int64_t ToInt(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return 0;
}

std::optional<std::pair<uint64_t, uint32_t>> ParseEventId(const std::string& text) {
  auto id = EventId::Parse(text);
  if (!id) return std::nullopt;
  return std::make_pair(id->commit_lsn.value(), id->ordinal);
}

}  // namespace

const std::vector<FaultTest::TargetDb>& FaultTest::Targets() {
  static const std::vector<TargetDb> targets = {{"tenant-a", "tenant_a", {"a"}},
                                                {"tenant-bc", "tenant_bc", {"b", "c"}}};
  return targets;
}

bool FaultTest::Full() {
  const char* mode = std::getenv("PGFANOUT_FAULTS");
  return mode != nullptr && std::string_view(mode) == "full";
}

int64_t PeakRss(pid_t pid) {
  // The pid may be gone and reused (pid_max is 32768 here, and every polling query forks a
  // backend): count it only while it still runs a pgfanout binary, never a Postgres one.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid), ec);
  if (ec || exe.filename().string().rfind("pgfanout", 0) != 0) return 0;
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  int64_t peak = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0 || line.rfind("VmRSS:", 0) == 0) {
      peak = std::max<int64_t>(peak, std::stoll(line.substr(6)) * 1024);
    }
  }
  return peak;
}

void FaultTest::SetUp() {
  const char* seed = std::getenv("PGFANOUT_FAULT_SEED");
  seed_ = seed ? std::strtoull(seed, nullptr, 10) : std::random_device{}();
  std::cout << "fault seed " << seed_ << " (repeat with PGFANOUT_FAULT_SEED=" << seed_ << ")\n";
  started_ = std::chrono::steady_clock::now();
  pg_ = StartSource();
  ASSERT_NE(pg_, nullptr);
  pg_->Exec(kWorkloadSchema);
  sink_pg_ = PgServer::Start();
  ASSERT_NE(sink_pg_, nullptr);
  sink_pg_->Exec("CREATE ROLE sink_writer LOGIN");
  for (const auto& t : Targets()) {
    sink_pg_->Exec(fmt::format("CREATE DATABASE {} OWNER sink_writer", t.db));
    sink_pg_->Exec(std::string("SET ROLE sink_writer;") + kTargetSchema, t.db);
  }
  char tmpl[] = "/tmp/pgfanout-fault-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  work_dir_ = tmpl;
  jsonl_path_ = work_dir_ + "/out/events.jsonl";
  log_path_ = work_dir_ + "/pgfanout.log";
  config_path_ = work_dir_ + "/pgfanout.yaml";
  WriteConfig();
  workload_ = std::make_unique<Workload>(
      Workload::Options{.dsn = pg_->Dsn(), .tenants = {"a", "b", "c", "d"}, .seed = seed_});
  std::string error;
  ASSERT_TRUE(workload_->Seed(&error)) << error;
  report_.scenario = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  sampling_ = true;
  sampler_ = std::thread([this] { Sample(); });
}

void FaultTest::TearDown() {
  if (workload_) workload_->Stop();
  sampling_ = false;
  if (sampler_.joinable()) sampler_.join();
  if (daemon_.running()) {
    daemon_.Kill(SIGKILL);
    daemon_.Wait(std::chrono::seconds(10));
  }
  if (HasFailure()) {
    std::string log = DaemonLog();
    std::cerr << "---- pgfanout log (" << log_path_ << "), last 20000 bytes ----\n"
              << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
  }
  pg_.reset();
  sink_pg_.reset();
  if (!HasFailure() && getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
  }
}

void FaultTest::WriteConfig() {
  std::ofstream out(config_path_);
  out << ConfigText(work_dir_ + "/state");
}

std::string FaultTest::ConfigText(const std::string& state_dir) const {
  std::string sinks;
  for (const auto& t : Targets()) {
    std::string tenants;
    for (const auto& tenant : t.tenants)
      tenants += (tenants.empty() ? "\"" : ", \"") + tenant + "\"";
    sinks += fmt::format(R"yaml(
  - id: {}
    type: postgres
    tenants: [{}]
    dsn: "{}"
    create_tables: true
    batch_size: 200
)yaml",
                         t.sink, tenants, SinkDsn(t.db));
  }
  std::string extra;
  for (const auto& t : ExtraTables()) {
    extra += fmt::format("\n  - name: public.{}\n    tenant_column: tenant_id", t);
  }
  const std::string jsonl = ConfirmSinks() ? ""
                                           : fmt::format(R"yaml(
  - id: all-events
    type: jsonl
    tenants: ["*"]
    path: {}
    batch_size: 500)yaml",
                                                         jsonl_path_);
  return fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: {}
  publication: {}
  status_interval: 1s
  confirm: {}
state_dir: {}
http:
  listen: "127.0.0.1:0"
log:
  retain: 24h
tables:
  - name: public.accounts
    tenant_column: tenant_id
  - name: public.ledger
    tenant_column: tenant_id{}
sinks:{}{}
)yaml",
                     SourceDsnForDaemon(), kSlot, kSlot, ConfirmSinks() ? "sinks" : "log",
                     state_dir, extra, jsonl, sinks + ExtraSinks());
}

void FaultTest::StartDaemon(const std::map<std::string, std::string>& env, bool wait,
                            const std::string& binary) {
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_, env, binary));
  daemon_pid_ = daemon_.pid();
  if (!wait) return;
  testing::WaitSlotActive(*pg_, daemon_, kSlot);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (const auto& t : Targets()) {
    while (sink_pg_->Scalar("SELECT count(*) FROM accounts", t.db) == "0") {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << t.sink << " never got its rows";
      ASSERT_TRUE(daemon_.running()) << "pgfanout exited";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

void FaultTest::KillDaemon(int signal) {
  if (daemon_.running()) {
    report_.peak_rss_bytes = std::max(report_.peak_rss_bytes, PeakRss(daemon_.pid()));
  }
  daemon_pid_ = -1;
  daemon_.Kill(signal);
  daemon_.Wait(std::chrono::seconds(30));
}

bool FaultTest::WaitDaemonDied(std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (daemon_.running()) {
    report_.peak_rss_bytes = std::max(report_.peak_rss_bytes, PeakRss(daemon_.pid()));
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  daemon_pid_ = -1;
  return true;
}

std::string FaultTest::NoteFault() {
  ++report_.faults;
  auto rows = pg_->Query(fmt::format(
      "SELECT pg_current_wal_lsn()::text, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), "
      "confirmed_flush_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name = '{}'",
      kSlot));
  if (rows.empty()) return SourceLsn();
  report_.max_replay_window_bytes =
      std::max<int64_t>(report_.max_replay_window_bytes, std::stoll(rows[0][1].value_or("0")));
  return rows[0][0].value_or("0/0");
}

bool FaultTest::AwaitRecovery(const std::string& lsn, std::chrono::steady_clock::time_point since,
                              std::chrono::steady_clock::duration budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (const auto& t : Targets()) {
      auto rows =
          sink_pg_->TryQuery(fmt::format("SELECT coalesce(bool_and(commit_lsn >= '{}'), false) "
                                         "FROM pgfanout_sink_state",
                                         lsn),
                             t.db);
      all = all && rows && !rows->empty() && (*rows)[0][0] == "t";
    }
    if (all) {
      report_.recovery_s.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ++report_.recoveries_censored;
  return false;
}

void FaultTest::StartWorkload(double rate) {
  workload_->SetRate(rate);
  workload_->Start();
}

void FaultTest::StopWorkload() { workload_->Stop(); }

std::string FaultTest::SinkDsn(const std::string& db) const {
  return fmt::format("host=127.0.0.1 port={} user=sink_writer dbname={}", sink_pg_->port(), db);
}

std::string FaultTest::SourceLsn() { return pg_->Scalar("SELECT pg_current_wal_lsn()::text"); }

void FaultTest::Sample() {
  while (sampling_) {
    auto rows = pg_->TryQuery(
        fmt::format("SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)"
                    "::bigint FROM pg_replication_slots WHERE slot_name = '{}'",
                    kSlot),
        "postgres");
    if (rows && !rows->empty() && (*rows)[0][0]) {
      int64_t wal = std::stoll(*(*rows)[0][0]);
      if (wal > peak_wal_) peak_wal_ = wal;
    }
    pid_t pid = daemon_pid_;
    if (pid > 0) {
      int64_t rss = PeakRss(pid);
      if (rss > peak_rss_) peak_rss_ = rss;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

TableState FaultTest::SourceState() { return ReadState(*pg_, "postgres"); }

TableState FaultTest::TargetState(const std::string& db) { return ReadState(*sink_pg_, db); }

TableState FaultTest::ReadState(const PgServer& server, const std::string& db) {
  TableState s;
  for (const auto& r : server.Query("SELECT tenant_id, op_id FROM ledger", db)) {
    s.ledger.insert({*r[0], std::stoll(*r[1])});
  }
  for (const auto& r : server.Query("SELECT tenant_id, id, version, balance FROM accounts", db)) {
    s.accounts[{*r[0], std::stoll(*r[1])}] = {std::stoll(*r[2]), std::stoll(*r[3])};
  }
  return s;
}

std::vector<Delivery> FaultTest::TargetAudit(const std::string& db) {
  std::vector<Delivery> out;
  for (const auto& r :
       sink_pg_->Query("SELECT tbl, op, tenant, k, version FROM fault_audit ORDER BY seq", db)) {
    out.push_back(
        Delivery{.table = *r[0] == "ledger" ? Delivery::Table::kLedger : Delivery::Table::kAccounts,
                 .op = (*r[1])[0],
                 .tenant = *r[2],
                 .key = std::stoll(*r[3]),
                 .version = std::stoll(*r[4])});
  }
  return out;
}

std::vector<Delivery> FaultTest::JsonlDeliveries() {
  std::vector<Delivery> out;
  std::ifstream in(jsonl_path_);
  std::string line;
  while (std::getline(in, line)) {
    auto ev = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (ev.is_discarded()) {
      ADD_FAILURE() << "the JSONL sink holds a line that does not parse: " << line.substr(0, 200);
      continue;
    }
    const std::string op = ev.value("op", "");
    const std::string table = ev.value("table", "");
    if (op == "truncate" || op.empty() || (table != "ledger" && table != "accounts")) continue;
    bool ledger = table == "ledger";
    const auto& row = op == "delete" ? ev["old"] : ev["new"];
    out.push_back(Delivery{.table = ledger ? Delivery::Table::kLedger : Delivery::Table::kAccounts,
                           .op = op[0],
                           .tenant = ev.value("tenant", ""),
                           .key = ToInt(ev["key"][ledger ? "op_id" : "id"]),
                           .version = ledger || op == "delete" ? 0 : ToInt(row["version"]),
                           .id = ParseEventId(ev.value("id", ""))});
  }
  return out;
}

std::vector<SinkView> FaultTest::Views() {
  std::vector<SinkView> views;
  if (!ConfirmSinks()) {
    views.push_back(
        SinkView{.name = "all-events", .deliveries = JsonlDeliveries(), .commit_order = true});
  }
  for (const auto& t : Targets()) {
    views.push_back(SinkView{.name = t.sink,
                             .tenants = t.tenants,
                             .deliveries = TargetAudit(t.db),
                             .compacts = true,
                             .rows = TargetState(t.db)});
  }
  ExtraViews(views);
  return views;
}

Report FaultTest::Finish(const std::string& scenario, std::chrono::seconds timeout) {
  workload_->Stop();
  const auto history = workload_->History();
  // Converged when a check finds nothing lost (what is lost now may still arrive).
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Report r;
  while (true) {
    r = Check(scenario, history, SourceState(), Views());
    if (r.Lost() == 0 || std::chrono::steady_clock::now() > deadline) break;
    if (!AnyDaemonRunning()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  r.faults = report_.faults;
  r.recovery_s = report_.recovery_s;
  r.recoveries_censored = report_.recoveries_censored;
  r.max_replay_window_bytes = report_.max_replay_window_bytes;
  r.peak_retained_wal_bytes = peak_wal_;
  r.peak_rss_bytes = std::max<int64_t>(report_.peak_rss_bytes, peak_rss_);
  if (daemon_.running()) r.peak_rss_bytes = std::max(r.peak_rss_bytes, PeakRss(daemon_.pid()));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  r.notes = report_.notes;
  std::cout << r.ToText() << std::flush;
  if (const char* path = std::getenv("PGFANOUT_FAULT_REPORT")) {
    bool fresh = !std::filesystem::exists(path);
    std::ofstream out(path, std::ios::app);
    if (fresh) out << Report::MarkdownHeader();
    out << r.ToMarkdownRow();
  }
  if (const char* path = std::getenv("PGFANOUT_FAULT_RESULTS")) {
    bool fresh = !std::filesystem::exists(path);
    std::ofstream out(path, std::ios::app);
    if (fresh) out << Report::CsvHeader();
    out << r.ToCsvRow();
  }
  return r;
}

std::string FaultTest::DaemonLog() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace pgfanout::faults
