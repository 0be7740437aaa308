#include "src/pipeline/router.h"

namespace pgfanout {

Router::Router(const SinkConfig& sink)
    : all_tenants_(sink.AllTenants()), tenants_(sink.tenants.begin(), sink.tenants.end()) {
  for (const auto& t : sink.tables) tables_.insert(t.source);
}

bool Router::Accepts(const ChangeEvent& event) const {
  if (!tables_.empty() && !tables_.count(event.table->QualifiedName())) return false;
  if (all_tenants_) return true;
  return event.tenant.has_value() && tenants_.count(*event.tenant) > 0;
}

}  // namespace pgfanout
