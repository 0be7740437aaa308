#include "decoders/wal2json/shape_tracker.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "decoders/wal2json/pg_types.h"

namespace pgfanout::wal2json {
namespace {

Error DecodeError(const Document& doc, std::string_view what) {
  return MakeError(
      ErrorKind::kDecode,
      fmt::format("wal2json '{}' document for {}.{}: {}", static_cast<char>(doc.action),
                  doc.schema.value_or("?"), doc.table.value_or("?"), what));
}

// A stand-in table OID for a table the hints do not name (FNV-1a of its name): stable for
// the same name, so its Relation and its changes agree.
RelationId SyntheticId(const std::string& schema, const std::string& table) {
  uint32_t h = 2166136261u;
  for (char c : schema + "." + table) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return RelationId{h | 0x80000000u};
}

std::set<std::string> Names(const std::vector<Column>& columns) {
  std::set<std::string> out;
  for (const auto& c : columns) out.insert(c.name);
  return out;
}

}  // namespace

ShapeTracker::ShapeTracker(const std::vector<TableHint>& hints) {
  for (const auto& h : hints) {
    Shape shape{.relation_id = RelationId{h.relation_id},
                .schema = h.schema,
                .table = h.table,
                .replica_identity = h.replica_identity};
    for (const auto& c : h.columns) {
      bool key = h.replica_identity == 'f' || (h.replica_identity == 'd' && c.in_primary_key) ||
                 (h.replica_identity == 'i' && c.in_identity_index);
      shape.columns.push_back(Col{.attnum = c.attnum,
                                  .name = c.name,
                                  .type_oid = c.type_oid,
                                  .type_text = c.type_text,
                                  .typmod = c.type_modifier,
                                  .key = key && !c.generated,
                                  .generated = c.generated});
    }
    shapes_[{h.schema, h.table}] = std::move(shape);
  }
}

void ShapeTracker::ForgetAnnounced() {
  for (auto& [name, shape] : shapes_) shape.announced = false;
}

ShapeTracker::Shape& ShapeTracker::ShapeFor(const std::string& schema, const std::string& table) {
  auto [it, added] = shapes_.try_emplace({schema, table});
  if (added) {
    it->second.relation_id = SyntheticId(schema, table);
    it->second.schema = schema;
    it->second.table = table;
  }
  return it->second;
}

ShapeTracker::Col ShapeTracker::Merge(const Column& doc, const Col* known) const {
  Col c{.attnum = doc.position != 0 ? doc.position : (known ? known->attnum : 0),
        .name = doc.name,
        .type_oid = doc.type_oid != 0 ? doc.type_oid : (known ? known->type_oid : 0),
        .type_text = doc.type,
        .key = known && known->key,
        .generated = known && known->generated};
  if (known && known->type_oid == c.type_oid && known->type_text == c.type_text) {
    c.typmod = known->typmod;
  } else {
    c.typmod = TypmodFromTypeText(c.type_text, c.type_oid).value_or(-1);
  }
  return c;
}

ShapeTracker::Layout ShapeTracker::FromComplete(const Shape& shape,
                                                const std::vector<Column>& doc) const {
  Layout out;
  for (size_t j = 0; j < doc.size(); ++j) {
    const Col* known = nullptr;
    for (const auto& s : shape.columns) {
      bool same = doc[j].position != 0 && s.attnum != 0 ? s.attnum == doc[j].position
                                                        : s.name == doc[j].name;
      if (same) known = &s;
    }
    out.columns.push_back(Merge(doc[j], known));
    out.source.push_back(static_cast<int>(j));
  }
  return out;
}

ShapeTracker::Layout ShapeTracker::FromPartial(const Shape& shape,
                                               const std::vector<Column>& doc) const {
  bool positions =
      std::all_of(doc.begin(), doc.end(), [](const Column& c) { return c.position; }) &&
      std::all_of(shape.columns.begin(), shape.columns.end(),
                  [](const Col& c) { return c.attnum; });
  Layout out;
  // A known column the document leaves out: unchanged TOAST if its type can be TOASTed,
  // else it was dropped (wal2json prints every other column, NULL or not).
  auto omitted = [&](const Col& s) {
    if (!MayBeToasted(s.type_oid)) return;
    out.columns.push_back(s);
    out.source.push_back(-1);
  };
  if (!positions) {
    // Match by name in the shape's order; columns the shape lacks come last.
    std::vector<bool> used(doc.size(), false);
    for (const auto& s : shape.columns) {
      auto it =
          std::find_if(doc.begin(), doc.end(), [&](const Column& c) { return c.name == s.name; });
      if (it == doc.end()) {
        omitted(s);
        continue;
      }
      size_t j = static_cast<size_t>(it - doc.begin());
      used[j] = true;
      out.columns.push_back(Merge(doc[j], &s));
      out.source.push_back(static_cast<int>(j));
    }
    for (size_t j = 0; j < doc.size(); ++j) {
      if (used[j]) continue;
      out.columns.push_back(Merge(doc[j], nullptr));
      out.source.push_back(static_cast<int>(j));
    }
    return out;
  }
  // Both in attnum order: merge by column number (a renamed column keeps its number).
  size_t i = 0, j = 0;
  while (i < shape.columns.size() || j < doc.size()) {
    if (j < doc.size() &&
        (i == shape.columns.size() || doc[j].position < shape.columns[i].attnum)) {
      out.columns.push_back(Merge(doc[j], nullptr));
      out.source.push_back(static_cast<int>(j++));
    } else if (j == doc.size() || shape.columns[i].attnum < doc[j].position) {
      omitted(shape.columns[i++]);
    } else {
      out.columns.push_back(Merge(doc[j], &shape.columns[i++]));
      out.source.push_back(static_cast<int>(j++));
    }
  }
  return out;
}

void ShapeTracker::SetKeys(Shape& shape, std::vector<Col>& columns, const Document& doc) const {
  switch (shape.replica_identity) {
    case 'f':
      // pgoutput flags every column it sends as part of a FULL identity.
      for (auto& c : columns) c.key = !c.generated;
      return;
    case 'd':
      if (!doc.pk) return;  // keep what the shape knew
      {
        std::set<std::string> pk = Names(*doc.pk);
        for (auto& c : columns) c.key = pk.count(c.name) && !c.generated;
      }
      return;
    case 'n':
      for (auto& c : columns) c.key = false;
      return;
    default:
      // 'i': the identity index's columns, as the hint said or the last identity showed.
      return;
  }
}

void ShapeTracker::Announce(Shape& shape, const std::vector<Col>& columns,
                            std::vector<pgoutput::Message>& out) {
  if (shape.announced && columns == shape.columns &&
      shape.replica_identity == shape.announced_identity) {
    return;
  }
  if (&columns != &shape.columns) shape.columns = columns;
  shape.announced = true;
  shape.announced_identity = shape.replica_identity;
  pgoutput::Relation rel{.relation_id = shape.relation_id,
                         .namespace_name = shape.schema,
                         .relation_name = shape.table,
                         .replica_identity = shape.replica_identity};
  for (const auto& c : shape.columns) {
    if (c.generated) continue;
    rel.columns.push_back(pgoutput::RelationColumn{.flags = static_cast<uint8_t>(c.key ? 1 : 0),
                                                   .name = c.name,
                                                   .type_oid = c.type_oid,
                                                   .type_modifier = c.typmod});
  }
  out.emplace_back(std::move(rel));
}

pgoutput::Tuple ShapeTracker::Values(const Shape& shape, const Layout& layout,
                                     std::vector<Column>& doc) const {
  pgoutput::Tuple tuple;
  tuple.reserve(shape.columns.size());
  for (size_t i = 0; i < layout.columns.size(); ++i) {
    if (layout.columns[i].generated) continue;
    int from = layout.source[i];
    tuple.push_back(from < 0 ? Datum{.kind = ValueKind::kUnchangedToast}
                             : std::move(doc[static_cast<size_t>(from)].value));
  }
  return tuple;
}

Result<pgoutput::Tuple> ShapeTracker::OldTuple(const Shape& shape, std::vector<Column>& identity,
                                               bool key_only) const {
  pgoutput::Tuple tuple;
  for (const auto& c : shape.columns) {
    if (c.generated) continue;
    auto it = std::find_if(identity.begin(), identity.end(),
                           [&](const Column& d) { return d.name == c.name; });
    if (it == identity.end() || (key_only && !c.key)) {
      tuple.push_back(Datum{});
      continue;
    }
    tuple.push_back(std::move(it->value));
  }
  for (const auto& d : identity) {
    auto known = std::find_if(shape.columns.begin(), shape.columns.end(),
                              [&](const Col& c) { return c.name == d.name; });
    if (known == shape.columns.end()) {
      return MakeError(ErrorKind::kDecode,
                       "its identity names column " + d.name + " that the table does not have");
    }
  }
  return tuple;
}

Result<void> ShapeTracker::Update(Shape& shape, Document& doc,
                                  std::vector<pgoutput::Message>& out) {
  if (!doc.columns) return DecodeError(doc, "no \"columns\"");
  std::vector<Column>& identity = doc.identity ? *doc.identity : *doc.columns;
  const bool has_identity = doc.identity.has_value();
  if (has_identity) {
    // Under FULL the identity is the whole old row, so it names every column the new row
    // has; the key of another identity does not. Follows ALTER TABLE ... REPLICA IDENTITY.
    std::set<std::string> ids = Names(identity);
    bool covers = std::all_of(doc.columns->begin(), doc.columns->end(),
                              [&](const Column& c) { return ids.count(c.name) > 0; });
    if (shape.replica_identity == 'f' && !covers) {
      shape.replica_identity = doc.pk && Names(*doc.pk) == ids ? 'd' : 'i';
    } else if (shape.replica_identity != 'f' && covers) {
      std::set<std::string> keys;
      for (const auto& c : shape.columns) {
        if (c.key) keys.insert(c.name);
      }
      if (shape.replica_identity == 'd' && doc.pk) keys = Names(*doc.pk);
      if (std::any_of(ids.begin(), ids.end(),
                      [&](const std::string& n) { return !keys.count(n); })) {
        shape.replica_identity = 'f';
      }
    }
  }
  const bool full = shape.replica_identity == 'f' && has_identity;
  Layout layout;
  if (full) {
    // The old row lists every column; the new one leaves out unchanged TOASTed values.
    for (auto& c : identity) {
      auto it = std::find_if(doc.columns->begin(), doc.columns->end(),
                             [&](const Column& n) { return n.name == c.name; });
      if (it != doc.columns->end() && c.position == 0) c.position = it->position;
    }
    layout = FromComplete(shape, identity);
    for (size_t i = 0; i < layout.columns.size(); ++i) {
      auto it = std::find_if(doc.columns->begin(), doc.columns->end(),
                             [&](const Column& n) { return n.name == layout.columns[i].name; });
      layout.source[i] =
          it == doc.columns->end() ? -1 : static_cast<int>(it - doc.columns->begin());
    }
  } else {
    layout = FromPartial(shape, *doc.columns);
    if (shape.replica_identity == 'i' && has_identity) {
      std::set<std::string> ids = Names(identity);
      for (auto& c : layout.columns) c.key = ids.count(c.name) && !c.generated;
    }
  }
  SetKeys(shape, layout.columns, doc);
  Announce(shape, layout.columns, out);
  pgoutput::Update update{.relation_id = shape.relation_id};
  update.new_tuple = Values(shape, layout, *doc.columns);
  if (full) {
    update.old_kind = 'O';
    PGF_TRY(update.old_tuple, OldTuple(shape, identity, /*key_only=*/false));
  } else if (has_identity) {
    auto old = OldTuple(shape, identity, /*key_only=*/true);
    if (!old) return DecodeError(doc, old.error().message);
    // wal2json prints the new row's key when the server logged no old key (the key did not
    // change); pgoutput then sends no old tuple at all.
    bool changed = false;
    for (size_t i = 0, k = 0; i < shape.columns.size(); ++i) {
      if (shape.columns[i].generated) continue;
      if (shape.columns[i].key && old.value()[k] != update.new_tuple[k]) changed = true;
      ++k;
    }
    if (changed) {
      update.old_kind = 'K';
      update.old_tuple = std::move(old).value();
    }
  }
  out.emplace_back(std::move(update));
  return boost::outcome_v2::success();
}

Result<void> ShapeTracker::Delete(Shape& shape, Document& doc,
                                  std::vector<pgoutput::Message>& out) {
  if (!doc.identity) return DecodeError(doc, "no \"identity\"");
  std::set<std::string> ids = Names(*doc.identity);
  if (shape.replica_identity == 'f') {
    std::set<std::string> pk = doc.pk ? Names(*doc.pk) : std::set<std::string>{};
    size_t visible = std::count_if(shape.columns.begin(), shape.columns.end(),
                                   [](const Col& c) { return !c.generated; });
    if (!pk.empty() && pk == ids && visible > ids.size()) shape.replica_identity = 'd';
  } else {
    std::set<std::string> keys;
    for (const auto& c : shape.columns) {
      if (c.key) keys.insert(c.name);
    }
    if (shape.replica_identity == 'd' && doc.pk) keys = Names(*doc.pk);
    // Under FULL a DELETE's identity is the whole old row, NULLs included.
    bool beyond_key =
        std::any_of(ids.begin(), ids.end(), [&](const std::string& n) { return !keys.count(n); });
    bool whole_row = std::all_of(shape.columns.begin(), shape.columns.end(), [&](const Col& c) {
      return c.generated || ids.count(c.name) > 0;
    });
    if (beyond_key && whole_row && !shape.columns.empty()) shape.replica_identity = 'f';
  }
  std::vector<Col> columns;
  if (shape.replica_identity == 'f' || shape.columns.empty()) {
    // The whole old row (or, for a table we know nothing of yet, all we get to see).
    columns = FromComplete(shape, *doc.identity).columns;
  } else {
    columns = shape.columns;
  }
  SetKeys(shape, columns, doc);
  Announce(shape, columns, out);
  pgoutput::Delete del{.relation_id = shape.relation_id,
                       .old_kind = shape.replica_identity == 'f' ? 'O' : 'K'};
  auto old = OldTuple(shape, *doc.identity, /*key_only=*/del.old_kind == 'K');
  if (!old) return DecodeError(doc, old.error().message);
  del.old_tuple = std::move(old).value();
  out.emplace_back(std::move(del));
  return boost::outcome_v2::success();
}

Result<void> ShapeTracker::Translate(Document&& doc, std::vector<pgoutput::Message>& out) {
  if (!doc.schema || !doc.table) return DecodeError(doc, "no \"schema\" or \"table\"");
  Shape& shape = ShapeFor(*doc.schema, *doc.table);
  switch (doc.action) {
    case Action::kInsert: {
      if (!doc.columns) return DecodeError(doc, "no \"columns\"");
      Layout layout = FromComplete(shape, *doc.columns);
      SetKeys(shape, layout.columns, doc);
      Announce(shape, layout.columns, out);
      out.emplace_back(pgoutput::Insert{.relation_id = shape.relation_id,
                                        .new_tuple = Values(shape, layout, *doc.columns)});
      return boost::outcome_v2::success();
    }
    case Action::kUpdate:
      return Update(shape, doc, out);
    case Action::kDelete:
      return Delete(shape, doc, out);
    case Action::kTruncate:
      // wal2json does not say whether the TRUNCATE had CASCADE or RESTART IDENTITY.
      Announce(shape, shape.columns, out);
      out.emplace_back(pgoutput::Truncate{.options = 0, .relation_ids = {shape.relation_id}});
      return boost::outcome_v2::success();
    default:
      return DecodeError(doc, "not a change");
  }
}

}  // namespace pgfanout::wal2json
