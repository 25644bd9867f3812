// A small HTTP/1.1 server that serves the views of a ViewRegistry as JSON:
//
//   GET /views                 {"views": [{"name", "keys", "num_rows", "version"}]}
//   GET /views/<name>          {"name", "keys", "num_rows", "version", "rows": [...]}
//   GET /views/<name>?key=v    the row as a JSON object (404 when absent);
//                              several key columns: ?<col1>=v1&<col2>=v2
//   GET /health                {"status": "ok"}
//
// Rows are encoded like the JSON-lines writer (formats/json_lines.h). Errors
// are JSON too: {"error": "..."} with 400 (bad key), 404 (unknown view or key),
// 405 (not GET) or 500.
//
/// Threading contract: one server thread accepts and answers connections one
/// at a time (one request per connection, `Connection: close`); Stop() and the
/// destructor may be called from any thread and join it.
#pragma once

#include <arrow/result.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace sabot {

class ViewRegistry;

class ViewHttpServer {
 public:
  /// Listens on `host`:`port` (port 0: an ephemeral port, see port()).
  static arrow::Result<std::unique_ptr<ViewHttpServer>> Start(const std::string& host,
                                                              int port,
                                                              ViewRegistry* registry);
  ~ViewHttpServer();

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  void Stop();

  /// The response to one request line (exposed for tests): status code and
  /// JSON body.
  static std::pair<int, std::string> Respond(ViewRegistry* registry,
                                             const std::string& method,
                                             const std::string& target);

 private:
  ViewHttpServer() = default;
  void Loop();
  void Serve(int fd);

  ViewRegistry* registry_ = nullptr;
  std::string host_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sabot
