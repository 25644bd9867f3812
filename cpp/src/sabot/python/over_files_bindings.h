// Python bindings of the OVER aggregate (over_rows) and the partitioned file
// sink (python/sabot/datastream.py: over_rows(), write_partitioned_files()).
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

void RegisterOverFilesBindings(nanobind::module_& m);

}  // namespace sabot
