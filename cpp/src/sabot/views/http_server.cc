#include "sabot/views/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "sabot/formats/json_lines.h"
#include "sabot/views/view.h"

namespace sabot {

namespace {

constexpr size_t kMaxRequestHead = 16 * 1024;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding ('+' is a space in query strings).
std::string UrlDecode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// `, "consistency": ..` and, for checkpoint views, `, "checkpoint": N`.
std::string ConsistencyJson(const MaterializedView& view) {
  std::string out = ", \"consistency\": \"";
  out += ViewConsistencyName(view.consistency());
  out += "\"";
  if (view.consistency() == ViewConsistency::kCheckpoint) {
    out += ", \"checkpoint\": " + std::to_string(view.published_checkpoint());
  }
  return out;
}

std::string ErrorBody(const std::string& message) {
  return "{\"error\": " + JsonString(message) + "}";
}

std::string KeysJson(const MaterializedView& view) {
  std::string out = "[";
  for (size_t i = 0; i < view.key_columns().size(); ++i) {
    if (i) out += ", ";
    out += JsonString(view.key_columns()[i]);
  }
  return out + "]";
}

// The rows of `batch` as JSON objects separated by ", ".
arrow::Status AppendRows(const arrow::RecordBatch& batch, bool* first, std::string* out) {
  std::string data;
  std::vector<int64_t> ends;
  ARROW_RETURN_NOT_OK(AppendJsonObjects(batch, &data, &ends));
  int64_t begin = 0;
  for (int64_t end : ends) {
    if (!*first) out->append(", ");
    *first = false;
    out->append(data, begin, end - begin);
    begin = end;
  }
  return arrow::Status::OK();
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Internal Server Error";
  }
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

std::pair<int, std::string> ViewHttpServer::Respond(ViewRegistry* registry,
                                                    const std::string& method,
                                                    const std::string& target) {
  if (method != "GET" && method != "HEAD") {
    return {405, ErrorBody("only GET is supported")};
  }
  std::string path = target, query;
  if (auto q = target.find('?'); q != std::string::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  path = UrlDecode(path, false);
  if (path == "/health") return {200, "{\"status\": \"ok\"}"};
  if (path == "/views" || path == "/views/") {
    std::string body = "{\"views\": [";
    bool first = true;
    for (const auto& view : registry->List()) {
      if (!first) body += ", ";
      first = false;
      body += "{\"name\": " + JsonString(view->name()) +
              ", \"keys\": " + KeysJson(*view) +
              ", \"num_rows\": " + std::to_string(view->num_rows()) +
              ", \"version\": " + std::to_string(view->version()) +
              ConsistencyJson(*view) + "}";
    }
    return {200, body + "]}"};
  }
  const std::string prefix = "/views/";
  if (path.rfind(prefix, 0) != 0) return {404, ErrorBody("no such path: " + path)};
  const std::string name = path.substr(prefix.size());
  auto view = registry->Find(name);
  if (!view) return {404, ErrorBody("no view named '" + name + "'")};

  // Query parameters: key=... (single-column keys) or <column>=...
  std::map<std::string, std::string> params;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string k = UrlDecode(pair.substr(0, eq), true);
    std::string v = eq == std::string::npos ? "" : UrlDecode(pair.substr(eq + 1), true);
    params[k] = v;
  }
  const auto& keys = view->key_columns();
  std::vector<std::string> key_text;
  if (params.count("key") && keys.size() == 1) {
    key_text.push_back(params["key"]);
  } else {
    for (const auto& k : keys) {
      if (params.count(k)) key_text.push_back(params[k]);
    }
    if (!key_text.empty() && key_text.size() != keys.size()) {
      return {400, ErrorBody("view '" + name + "' is keyed by " + KeysJson(*view) +
                             ": give every key column")};
    }
  }
  if (!key_text.empty()) {
    auto row = view->GetByText(key_text);
    if (!row.ok()) return {400, ErrorBody(row.status().message())};
    if (*row == nullptr) return {404, ErrorBody("key not found in view '" + name + "'")};
    std::string body;
    bool first = true;
    auto st = AppendRows(**row, &first, &body);
    if (!st.ok()) return {500, ErrorBody(st.ToString())};
    return {200, body};
  }
  // A full scan. The version is read before the scan: the rows are at least
  // that recent.
  const int64_t version = view->version();
  auto table = view->Scan();
  if (!table.ok()) return {500, ErrorBody(table.status().ToString())};
  std::string rows;
  bool first = true;
  int64_t num_rows = 0;
  if (*table) {
    num_rows = (*table)->num_rows();
    arrow::TableBatchReader reader(**table);
    std::shared_ptr<arrow::RecordBatch> batch;
    while (reader.ReadNext(&batch).ok() && batch) {
      auto st = AppendRows(*batch, &first, &rows);
      if (!st.ok()) return {500, ErrorBody(st.ToString())};
    }
  }
  return {200, "{\"name\": " + JsonString(name) + ", \"keys\": " + KeysJson(*view) +
                   ", \"num_rows\": " + std::to_string(num_rows) +
                   ", \"version\": " + std::to_string(version) + ConsistencyJson(*view) +
                   ", \"rows\": [" + rows + "]}"};
}

arrow::Result<std::unique_ptr<ViewHttpServer>> ViewHttpServer::Start(
    const std::string& host, int port, ViewRegistry* registry) {
  std::unique_ptr<ViewHttpServer> server(new ViewHttpServer());
  server->registry_ = registry;
  server->host_ = host;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return arrow::Status::Invalid("view server: '", host, "' is not an IPv4 address");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return arrow::Status::IOError("view server: socket: ", std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    return arrow::Status::IOError("view server: cannot listen on ", host, ":", port, ": ",
                                  std::strerror(err));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  server->port_ = ntohs(addr.sin_port);
  server->listen_fd_ = fd;
  if (::pipe2(server->wake_pipe_, O_CLOEXEC) != 0) {
    ::close(fd);
    return arrow::Status::IOError("view server: pipe: ", std::strerror(errno));
  }
  ViewHttpServer* self = server.get();
  server->thread_ = std::thread([self] { self->Loop(); });
  return server;
}

ViewHttpServer::~ViewHttpServer() { Stop(); }

void ViewHttpServer::Stop() {
  if (stop_.exchange(true)) return;
  if (wake_pipe_[1] >= 0) {
    char c = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int* fd : {&listen_fd_, &wake_pipe_[0], &wake_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void ViewHttpServer::Loop() {
  while (!stop_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0 || stop_.load()) return;
    if (fds[0].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      Serve(client);
      ::close(client);
    }
  }
}

void ViewHttpServer::Serve(int fd) {
  timeval timeout{5, 0};  // a client that sends nothing does not hold the server
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > kMaxRequestHead) return;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  const std::string line = head.substr(0, head.find("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  int status;
  std::string body;
  std::string method;
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    status = 400;
    body = ErrorBody("malformed request line");
  } else {
    method = line.substr(0, sp1);
    std::tie(status, body) =
        Respond(registry_, method, line.substr(sp1 + 1, sp2 - sp1 - 1));
  }
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
                         "\r\nContent-Type: application/json; charset=utf-8"
                         "\r\nContent-Length: " +
                         std::to_string(body.size()) +
                         "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") response += body;
  SendAll(fd, response);
}

}  // namespace sabot
