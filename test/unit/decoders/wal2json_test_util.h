#pragma once

// Helpers shared by the wal2json decoder tests: the captured data, and a resolver that
// turns a stream of pgoutput messages (from either plugin) into one record per change, with
// the Relation in effect when it was decoded.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "decoders/pgoutput/reader.h"
#include "decoders/wal2json/reader.h"
#include "test/unit/decoders/pgoutput_test_util.h"

namespace pgfanout::wal2json::testutil {

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

inline std::string DataPath(const std::string& name) {
  return std::string(WAL2JSON_TEST_DATA) + "/" + name;
}

// data/wal2json_hints.jsonl: one table per line, as capture_wal2json.sh wrote it.
inline std::vector<TableHint> LoadHints() {
  std::vector<TableHint> hints;
  for (const auto& line : ReadLines(DataPath("wal2json_hints.jsonl"))) {
    auto j = nlohmann::json::parse(line);
    TableHint h{.schema = j["schema"],
                .table = j["table"],
                .relation_id = j["oid"],
                .replica_identity = j["replica_identity"].get<std::string>()[0]};
    for (const auto& c : j["columns"]) {
      h.columns.push_back(TableHint::Column{.attnum = c["attnum"],
                                            .name = c["name"],
                                            .type_oid = c["type_oid"],
                                            .type_modifier = c["type_modifier"],
                                            .type_text = c["type_text"],
                                            .in_primary_key = c["in_primary_key"],
                                            .in_identity_index = c["in_identity_index"],
                                            .generated = c["generated"]});
    }
    hints.push_back(std::move(h));
  }
  return hints;
}

// Feeds every document to one reader; fails the test on the first rejection.
inline std::vector<pgoutput::Message> DecodeAll(Reader& reader,
                                                const std::vector<std::string>& docs) {
  std::vector<pgoutput::Message> out;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto r = reader.Decode(docs[i], out);
    if (!r) {
      ADD_FAILURE() << "document " << i << " rejected: " << r.error().message << "\n" << docs[i];
      break;
    }
  }
  return out;
}

inline std::vector<pgoutput::Message> DecodePgoutput(const std::vector<std::string>& hex) {
  std::vector<pgoutput::Message> out;
  bool in_stream = false;
  for (const auto& h : hex) {
    auto m = pgoutput::Decode(pgoutput::testutil::FromHex(h), in_stream);
    if (!m) {
      ADD_FAILURE() << m.error().message;
      break;
    }
    if (std::holds_alternative<pgoutput::StreamStart>(m.value())) in_stream = true;
    if (std::holds_alternative<pgoutput::StreamStop>(m.value())) in_stream = false;
    out.push_back(std::move(m).value());
  }
  return out;
}

// One committed change, with what pgoutput's Relation said about its table at the time.
struct Change {
  Lsn commit_lsn;
  uint32_t ordinal = 0;
  Xid xid;
  int64_t commit_time = 0;
  char op = 0;
  std::string table;
  uint32_t relation_id = 0;
  char replica_identity = 0;
  std::vector<std::tuple<uint8_t, std::string, uint32_t, int32_t>> columns;
  pgoutput::Tuple new_tuple;
  char old_kind = 0;
  pgoutput::Tuple old_tuple;
  uint8_t truncate_options = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Change& c) {
  return os << c.commit_lsn.ToString() << "#" << c.ordinal << " " << c.op << " " << c.table;
}

struct Resolved {
  std::vector<Change> changes;
  std::vector<pgoutput::LogicalMessage> messages;
};

// Plays the messages the way the assembler does: Relations by id, changes buffered per
// transaction (plain, or streamed with its aborts) and numbered at commit.
inline Resolved Resolve(std::vector<pgoutput::Message> messages) {
  using namespace pgoutput;
  Resolved out;
  std::map<uint32_t, Relation> relations;
  struct Pending {
    Xid subxid;
    Change change;
  };
  std::vector<Pending> plain;
  std::optional<Begin> begin;
  std::map<uint32_t, std::vector<Pending>> streams;
  std::optional<uint32_t> stream;
  auto add = [&](Xid subxid, Change&& c) {
    if (stream) {
      streams[*stream].push_back(Pending{subxid, std::move(c)});
    } else {
      plain.push_back(Pending{subxid, std::move(c)});
    }
  };
  auto described = [&](uint32_t id, Change& c) {
    const Relation& r = relations[id];
    c.table = r.namespace_name + "." + r.relation_name;
    c.relation_id = id;
    c.replica_identity = r.replica_identity;
    for (const auto& col : r.columns) {
      c.columns.emplace_back(col.flags, col.name, col.type_oid, col.type_modifier);
    }
  };
  auto commit = [&](std::vector<Pending>& pending, Lsn lsn, Xid xid, int64_t time) {
    uint32_t ordinal = 0;
    for (auto& p : pending) {
      p.change.commit_lsn = lsn;
      p.change.ordinal = ordinal++;
      p.change.xid = xid;
      p.change.commit_time = time;
      out.changes.push_back(std::move(p.change));
    }
    pending.clear();
  };
  for (auto& m : messages) {
    if (auto* b = std::get_if<Begin>(&m)) begin = *b;
    if (auto* c = std::get_if<Commit>(&m)) {
      EXPECT_TRUE(begin.has_value());
      if (begin) commit(plain, begin->final_lsn, begin->xid, c->commit_time);
      begin.reset();
    }
    if (auto* r = std::get_if<Relation>(&m)) relations[r->relation_id.value] = *r;
    if (auto* s = std::get_if<StreamStart>(&m)) stream = s->xid.value;
    if (std::holds_alternative<StreamStop>(m)) stream.reset();
    if (auto* a = std::get_if<StreamAbort>(&m)) {
      auto& list = streams[a->xid.value];
      std::erase_if(list,
                    [&](const Pending& p) { return a->xid == a->subxid || p.subxid == a->subxid; });
    }
    if (auto* sc = std::get_if<StreamCommit>(&m)) {
      commit(streams[sc->xid.value], sc->commit_lsn, sc->xid, sc->commit_time);
    }
    if (auto* l = std::get_if<LogicalMessage>(&m)) out.messages.push_back(*l);
    if (auto* i = std::get_if<Insert>(&m)) {
      Change c{.op = 'I', .new_tuple = i->new_tuple};
      described(i->relation_id.value, c);
      add(i->xid, std::move(c));
    }
    if (auto* u = std::get_if<Update>(&m)) {
      Change c{
          .op = 'U', .new_tuple = u->new_tuple, .old_kind = u->old_kind, .old_tuple = u->old_tuple};
      described(u->relation_id.value, c);
      add(u->xid, std::move(c));
    }
    if (auto* d = std::get_if<Delete>(&m)) {
      Change c{.op = 'D', .old_kind = d->old_kind, .old_tuple = d->old_tuple};
      described(d->relation_id.value, c);
      add(d->xid, std::move(c));
    }
    if (auto* t = std::get_if<Truncate>(&m)) {
      for (RelationId id : t->relation_ids) {
        Change c{.op = 'T', .truncate_options = t->options};
        described(id.value, c);
        add(t->xid, std::move(c));
      }
    }
  }
  return out;
}

// Every field of a Change, for EXPECT_EQ.
inline auto Fields(const Change& c) {
  return std::tie(c.commit_lsn, c.ordinal, c.xid, c.commit_time, c.op, c.table, c.relation_id,
                  c.replica_identity, c.columns, c.new_tuple, c.old_kind, c.old_tuple,
                  c.truncate_options);
}

}  // namespace pgfanout::wal2json::testutil
