#include "sabot/checkpoint/metadata.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

namespace sabot::checkpoint {

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<StoredFile> CheckpointMetadata::AllFiles() const {
  std::vector<StoredFile> out;
  std::set<std::string> seen;
  auto add = [&](const StoredFile& f) {
    if (seen.insert(f.path).second) out.push_back(f);
  };
  for (const auto& [uid, op] : operators) {
    for (const auto& inst : op.instances) {
      for (const auto& [table, files] : inst.keyed)
        for (const auto& f : files) add(f);
      for (const auto& [table, files] : inst.operator_state)
        for (const auto& f : files) add(f);
      for (const auto& [table, set] : inst.files) {
        for (const auto& e : set.private_files) add(e.file);
        for (const auto& e : set.shared_files) add(e.file);
      }
    }
  }
  return out;
}

int64_t CheckpointMetadata::TotalBytes() const {
  int64_t total = 0;
  for (const auto& f : AllFiles()) total += f.size;
  return total;
}

namespace {

std::string Crc32Hex(uint32_t crc) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", crc);
  return buf;
}

void WriteFile(std::ostringstream& os, const StoredFile& f) {
  os << "{\"path\": \"" << JsonEscape(f.path) << "\", \"size\": " << f.size
     << ", \"crc32\": \"" << Crc32Hex(f.crc32) << "\"";
  if (f.rows >= 0) os << ", \"rows\": " << f.rows;
  os << "}";
}

void WriteTables(std::ostringstream& os, const char* indent,
                 const std::map<std::string, std::vector<StoredFile>>& tables) {
  os << "{";
  bool first_table = true;
  for (const auto& [table, files] : tables) {
    os << (first_table ? "\n" : ",\n") << indent << "  \"" << JsonEscape(table)
       << "\": [";
    first_table = false;
    for (size_t i = 0; i < files.size(); ++i) {
      os << (i ? ",\n" : "\n") << indent << "    ";
      WriteFile(os, files[i]);
    }
    os << "]";
  }
  if (!first_table) os << "\n" << indent;
  os << "}";
}

void WriteEntries(std::ostringstream& os, const char* indent,
                  const std::vector<StoredFileSet::Entry>& entries) {
  os << "[";
  for (size_t i = 0; i < entries.size(); ++i) {
    os << (i ? ",\n" : "\n") << indent << "  {\"name\": \"" << JsonEscape(entries[i].name)
       << "\", \"file\": ";
    WriteFile(os, entries[i].file);
    os << "}";
  }
  if (!entries.empty()) os << "\n" << indent;
  os << "]";
}

// --- parsing -------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string path) : path_(std::move(path)) {}

  arrow::Status Error(const std::string& what) const {
    return arrow::Status::Invalid("checkpoint metadata '", path_, "' is invalid: ", what);
  }

  arrow::Result<simdjson::dom::element> Field(simdjson::dom::object obj, const char* key,
                                              const std::string& where) const {
    simdjson::dom::element e;
    if (obj.at_key(key).get(e) != simdjson::SUCCESS) {
      return Error(where + " has no field '" + key + "'");
    }
    return e;
  }
  arrow::Result<int64_t> Int(simdjson::dom::object obj, const char* key,
                             const std::string& where) const {
    ARROW_ASSIGN_OR_RAISE(auto e, Field(obj, key, where));
    int64_t v;
    if (e.get_int64().get(v) != simdjson::SUCCESS) {
      return Error(where + "." + key + " is not an integer");
    }
    return v;
  }
  arrow::Result<std::string> String(simdjson::dom::object obj, const char* key,
                                    const std::string& where) const {
    ARROW_ASSIGN_OR_RAISE(auto e, Field(obj, key, where));
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      return Error(where + "." + key + " is not a string");
    }
    return std::string(v);
  }
  arrow::Result<simdjson::dom::object> Object(simdjson::dom::element e,
                                              const std::string& where) const {
    simdjson::dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
      return Error(where + " is not an object");
    }
    return o;
  }
  arrow::Result<simdjson::dom::array> Array(simdjson::dom::element e,
                                            const std::string& where) const {
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
      return Error(where + " is not an array");
    }
    return a;
  }

  arrow::Result<StoredFile> File(simdjson::dom::element e,
                                 const std::string& where) const {
    ARROW_ASSIGN_OR_RAISE(auto o, Object(e, where));
    StoredFile f;
    ARROW_ASSIGN_OR_RAISE(f.path, String(o, "path", where));
    ARROW_ASSIGN_OR_RAISE(f.size, Int(o, "size", where));
    ARROW_ASSIGN_OR_RAISE(auto crc, String(o, "crc32", where));
    char* end = nullptr;
    unsigned long value = std::strtoul(crc.c_str(), &end, 16);
    if (crc.empty() || crc.size() > 8 || end != crc.c_str() + crc.size()) {
      return Error(where + ".crc32 is not 8 hex digits: '" + crc + "'");
    }
    f.crc32 = static_cast<uint32_t>(value);
    simdjson::dom::element rows;
    if (o.at_key("rows").get(rows) == simdjson::SUCCESS) {
      if (rows.get_int64().get(f.rows) != simdjson::SUCCESS) {
        return Error(where + ".rows is not an integer");
      }
    }
    if (f.path.empty() || f.path.front() == '/') {
      return Error(where + ".path must be a relative path: '" + f.path + "'");
    }
    return f;
  }

  arrow::Result<std::map<std::string, std::vector<StoredFile>>> Tables(
      simdjson::dom::object parent, const char* key, const std::string& where) const {
    std::map<std::string, std::vector<StoredFile>> out;
    simdjson::dom::element e;
    if (parent.at_key(key).get(e) != simdjson::SUCCESS) return out;
    ARROW_ASSIGN_OR_RAISE(auto obj, Object(e, where + "." + key));
    for (auto field : obj) {
      std::string table(field.key);
      std::string w = where + "." + key + "." + table;
      ARROW_ASSIGN_OR_RAISE(auto arr, Array(field.value, w));
      auto& files = out[table];
      for (auto item : arr) {
        ARROW_ASSIGN_OR_RAISE(auto f, File(item, w));
        files.push_back(std::move(f));
      }
    }
    return out;
  }

  arrow::Result<std::vector<StoredFileSet::Entry>> Entries(
      simdjson::dom::object parent, const char* key, const std::string& where) const {
    std::vector<StoredFileSet::Entry> out;
    simdjson::dom::element e;
    if (parent.at_key(key).get(e) != simdjson::SUCCESS) return out;
    ARROW_ASSIGN_OR_RAISE(auto arr, Array(e, where + "." + key));
    for (auto item : arr) {
      ARROW_ASSIGN_OR_RAISE(auto o, Object(item, where + "." + key));
      StoredFileSet::Entry entry;
      ARROW_ASSIGN_OR_RAISE(entry.name, String(o, "name", where + "." + key));
      ARROW_ASSIGN_OR_RAISE(auto f, Field(o, "file", where + "." + key));
      ARROW_ASSIGN_OR_RAISE(entry.file, File(f, where + "." + key + "." + entry.name));
      out.push_back(std::move(entry));
    }
    return out;
  }

 private:
  std::string path_;
};

}  // namespace

std::string MetadataToJson(const CheckpointMetadata& m) {
  std::ostringstream os;
  os << "{\n";
  os << "  \"format_version\": " << m.format_version << ",\n";
  os << "  \"kind\": \"" << JsonEscape(m.kind) << "\",\n";
  os << "  \"checkpoint_id\": " << m.checkpoint_id << ",\n";
  os << "  \"job_name\": \"" << JsonEscape(m.job_name) << "\",\n";
  os << "  \"timestamp_ms\": " << m.timestamp_ms << ",\n";
  os << "  \"max_parallelism\": " << m.max_parallelism << ",\n";
  os << "  \"operators\": [";
  bool first_op = true;
  for (const auto& [uid, op] : m.operators) {
    os << (first_op ? "\n" : ",\n");
    first_op = false;
    os << "    {\"uid\": \"" << JsonEscape(op.uid)
       << "\", \"parallelism\": " << op.parallelism << ", \"instances\": [";
    for (size_t i = 0; i < op.instances.size(); ++i) {
      const auto& inst = op.instances[i];
      os << (i ? ",\n" : "\n");
      os << "      {\"index\": " << inst.index << ", \"key_groups\": ["
         << inst.key_groups.first << ", " << inst.key_groups.last << "],\n";
      os << "       \"keyed\": ";
      WriteTables(os, "       ", inst.keyed);
      os << ",\n       \"operator_state\": ";
      WriteTables(os, "       ", inst.operator_state);
      os << ",\n       \"files\": {";
      bool first_set = true;
      for (const auto& [table, set] : inst.files) {
        os << (first_set ? "\n" : ",\n") << "         \"" << JsonEscape(table)
           << "\": {\"private\": ";
        first_set = false;
        WriteEntries(os, "           ", set.private_files);
        os << ", \"shared\": ";
        WriteEntries(os, "           ", set.shared_files);
        os << "}";
      }
      if (!first_set) os << "\n       ";
      os << "}";
      if (!inst.positions_json.empty()) {
        os << ",\n       \"positions\": {";
        bool first = true;
        for (const auto& [table, json] : inst.positions_json) {
          os << (first ? "" : ", ") << "\"" << JsonEscape(table) << "\": " << json;
          first = false;
        }
        os << "}";
      }
      os << "}";
    }
    os << "]}";
  }
  if (!first_op) os << "\n  ";
  os << "]\n}\n";
  return os.str();
}

arrow::Result<CheckpointMetadata> MetadataFromJson(const std::string& json,
                                                   const std::string& path) {
  Parser p(path);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto err = parser.parse(json).get(doc);
  if (err != simdjson::SUCCESS) {
    return p.Error(std::string("not valid JSON (") + simdjson::error_message(err) + ")");
  }
  ARROW_ASSIGN_OR_RAISE(auto root, p.Object(doc, "the document"));
  CheckpointMetadata m;
  ARROW_ASSIGN_OR_RAISE(int64_t version, p.Int(root, "format_version", "the document"));
  if (version != kMetadataFormatVersion) {
    return p.Error("format_version " + std::to_string(version) +
                   " is not supported (this build reads version " +
                   std::to_string(kMetadataFormatVersion) + ")");
  }
  m.format_version = static_cast<int>(version);
  ARROW_ASSIGN_OR_RAISE(m.kind, p.String(root, "kind", "the document"));
  if (m.kind != "checkpoint" && m.kind != "savepoint") {
    return p.Error("kind must be checkpoint or savepoint, not '" + m.kind + "'");
  }
  ARROW_ASSIGN_OR_RAISE(m.checkpoint_id, p.Int(root, "checkpoint_id", "the document"));
  ARROW_ASSIGN_OR_RAISE(m.job_name, p.String(root, "job_name", "the document"));
  ARROW_ASSIGN_OR_RAISE(m.timestamp_ms, p.Int(root, "timestamp_ms", "the document"));
  ARROW_ASSIGN_OR_RAISE(int64_t max_p, p.Int(root, "max_parallelism", "the document"));
  if (max_p < 1 || max_p > (1 << 20)) {
    return p.Error("max_parallelism " + std::to_string(max_p) + " is out of range");
  }
  m.max_parallelism = static_cast<int>(max_p);
  ARROW_ASSIGN_OR_RAISE(auto ops_el, p.Field(root, "operators", "the document"));
  ARROW_ASSIGN_OR_RAISE(auto ops, p.Array(ops_el, "operators"));
  for (auto op_el : ops) {
    ARROW_ASSIGN_OR_RAISE(auto op_obj, p.Object(op_el, "an operator"));
    OperatorMetadata op;
    ARROW_ASSIGN_OR_RAISE(op.uid, p.String(op_obj, "uid", "an operator"));
    const std::string where = "operator '" + op.uid + "'";
    ARROW_ASSIGN_OR_RAISE(int64_t par, p.Int(op_obj, "parallelism", where));
    if (par < 1 || par > m.max_parallelism) {
      return p.Error(where + " has parallelism " + std::to_string(par));
    }
    op.parallelism = static_cast<int>(par);
    ARROW_ASSIGN_OR_RAISE(auto inst_el, p.Field(op_obj, "instances", where));
    ARROW_ASSIGN_OR_RAISE(auto insts, p.Array(inst_el, where + ".instances"));
    for (auto item : insts) {
      ARROW_ASSIGN_OR_RAISE(auto io, p.Object(item, where + ".instances[]"));
      InstanceMetadata inst;
      ARROW_ASSIGN_OR_RAISE(int64_t index, p.Int(io, "index", where));
      if (index < 0 || index >= op.parallelism) {
        return p.Error(where + " has instance index " + std::to_string(index));
      }
      inst.index = static_cast<int>(index);
      const std::string iw = where + " instance " + std::to_string(index);
      ARROW_ASSIGN_OR_RAISE(auto kg_el, p.Field(io, "key_groups", iw));
      ARROW_ASSIGN_OR_RAISE(auto kg, p.Array(kg_el, iw + ".key_groups"));
      std::vector<int64_t> bounds;
      for (auto b : kg) {
        int64_t v;
        if (b.get_int64().get(v) != simdjson::SUCCESS) {
          return p.Error(iw + ".key_groups holds a non-integer");
        }
        bounds.push_back(v);
      }
      if (bounds.size() != 2) return p.Error(iw + ".key_groups must be [first, last]");
      inst.key_groups.first = static_cast<int>(bounds[0]);
      inst.key_groups.last = static_cast<int>(bounds[1]);
      ARROW_ASSIGN_OR_RAISE(inst.keyed, p.Tables(io, "keyed", iw));
      ARROW_ASSIGN_OR_RAISE(inst.operator_state, p.Tables(io, "operator_state", iw));
      simdjson::dom::element files_el;
      if (io.at_key("files").get(files_el) == simdjson::SUCCESS) {
        ARROW_ASSIGN_OR_RAISE(auto files_obj, p.Object(files_el, iw + ".files"));
        for (auto field : files_obj) {
          std::string table(field.key);
          const std::string fw = iw + ".files." + table;
          ARROW_ASSIGN_OR_RAISE(auto set_obj, p.Object(field.value, fw));
          StoredFileSet set;
          ARROW_ASSIGN_OR_RAISE(set.private_files, p.Entries(set_obj, "private", fw));
          ARROW_ASSIGN_OR_RAISE(set.shared_files, p.Entries(set_obj, "shared", fw));
          inst.files[table] = std::move(set);
        }
      }
      op.instances.push_back(std::move(inst));
    }
    std::sort(op.instances.begin(), op.instances.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    if (static_cast<int>(op.instances.size()) != op.parallelism) {
      return p.Error(where + " lists " + std::to_string(op.instances.size()) +
                     " instances for parallelism " + std::to_string(op.parallelism));
    }
    for (int i = 0; i < op.parallelism; ++i) {
      if (op.instances[i].index != i) {
        return p.Error(where + " misses instance " + std::to_string(i));
      }
    }
    if (m.operators.count(op.uid)) return p.Error(where + " is listed twice");
    std::string uid = op.uid;
    m.operators.emplace(std::move(uid), std::move(op));
  }
  return m;
}

}  // namespace sabot::checkpoint
