// The keyed state backend as a standalone byte store for Faust-style tables
// (python/sabot/faust/tables.py), registered into the _sabot module by
// module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds the FaustStore class (memory or RocksDB backend, one value state) to `m`.
void RegisterFaustStoreBindings(nanobind::module_& m);

}  // namespace sabot
