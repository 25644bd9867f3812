// Python bindings of the lookup join (with PostgreSQL tables), materialized
// views (with their HTTP server) and upsert sinks, registered into the _sabot
// module by module.cc. Options arrive as dicts built by python/sabot/lookup.py,
// views.py and upsert.py (which document them); bad options raise ValueError.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// postgres_lookup_join, the stats class and the PostgreSQL admin helpers
/// (python/lookup_bindings.cc).
void RegisterLookupBindings(nanobind::module_& m);
/// materialize, the View and ViewServer classes (python/views_bindings.cc).
void RegisterViewBindings(nanobind::module_& m);
/// kafka_upsert_sink, file_upsert_sink (python/upsert_bindings.cc).
void RegisterUpsertBindings(nanobind::module_& m);

}  // namespace sabot
