// clip::Server's HTTP side on cpp-httplib (Debian's libcpp-httplib-dev: a maintained, security-patched package; a
// thread-pool server with request size and timeout limits and multipart parsing, and no other dependency than the
// TLS and compression libraries it was built with).
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "clip/util/error.h"
#include "serve/http_frontend.h"
#include "util/json.h"

namespace clip {
namespace {

// The request line and headers (what admit() looks at, before the body is read).
ServeRequest headers_of(const httplib::Request& req) {
  ServeRequest r;
  r.method = req.method;
  r.path = req.path;
  r.content_type = req.get_header_value("Content-Type");
  r.authorization = req.get_header_value("Authorization");
  r.from_http = true;
  r.transfer_encoding = req.get_header_value("Transfer-Encoding");
  r.content_encoding = req.get_header_value("Content-Encoding");
  r.range = req.get_header_value("Range");
  if (req.has_header("Content-Length")) {
    const std::string value = req.get_header_value("Content-Length");
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
    if (!value.empty() && *end == '\0' && errno == 0 && n <= static_cast<unsigned long long>(INT64_MAX)) {
      r.content_length = static_cast<int64_t>(n);
    }
  }
  return r;
}

ServeRequest to_serve_request(const httplib::Request& req) {
  ServeRequest r = headers_of(req);
  // Multipart parts: those with a file name (or an image type) are images, in field-name order; the rest are fields.
  for (const auto& [name, part] : req.files) {
    if (!part.filename.empty() || part.content_type.rfind("image/", 0) == 0) {
      r.files.push_back({name, part.filename, part.content_type, part.content});
    } else {
      r.fields[name] = part.content;
    }
  }
  if (req.files.empty()) r.body = req.body;
  return r;
}

const char* reason(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 408: return "the request was not sent in time";
    case 413: return "the request body is larger than the server takes (--max-body-mb)";
    case 414: return "the request line is too long";
    case 416: return "range not satisfiable";
    default: return status >= 500 ? "internal server error" : "the request could not be handled";
  }
}

void write(const ServeResponse& out, httplib::Response& res) {
  res.status = out.status;
  for (const auto& [name, value] : out.headers) res.set_header(name, value);
  res.set_content(out.body, out.content_type.c_str());
}

class HttplibFrontend final : public HttpFrontend {
 public:
  HttplibFrontend(Server& server, const ServeOptions& options) {
    const int threads = std::max(1, options.threads());
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http_.set_payload_max_length(static_cast<size_t>(std::max<int64_t>(options.max_body_bytes(), 1)));
    const auto read_us = static_cast<int64_t>(options.read_timeout_s() * 1e6);
    http_.set_read_timeout(read_us / 1'000'000, read_us % 1'000'000);
    http_.set_write_timeout(read_us / 1'000'000, read_us % 1'000'000);
    http_.set_keep_alive_max_count(1000);
    // httplib writes the headers and the body in separate sends: with Nagle's algorithm on, the body waits for the
    // client's delayed ACK of the headers (40 ms on Linux), on every keep-alive request.
    http_.set_tcp_nodelay(true);
    // httplib's default sets SO_REUSEPORT, with which a second server binds the same port and the kernel splits the
    // connections between them: a second clip_serve on a port in use must fail instead. SO_REUSEADDR alone still
    // lets a restarted server bind while the old connections linger in TIME_WAIT.
    http_.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const httplib::Server::Handler handler = [&server](const httplib::Request& req, httplib::Response& res) {
      write(server.handle(to_serve_request(req)), res);
    };
    http_.Get(".*", handler).Post(".*", handler).Put(".*", handler).Patch(".*", handler).Delete(".*", handler);
    http_.Options(".*", handler);
    // Before the body is read: bodies of unknown size and compressed ones are refused from the headers (httplib
    // limits only bodies with a Content-Length, and inflates compressed ones without a limit). Every other body is
    // read, at most --max-body-mb (httplib answers 413 beyond, skipping the rest), before handle() checks the rest.
    http_.set_pre_routing_handler([&server](const httplib::Request& req, httplib::Response& res) {
      const std::optional<ServeResponse> refusal = server.admit(headers_of(req));
      if (!refusal) return httplib::Server::HandlerResponse::Unhandled;
      write(*refusal, res);
      return httplib::Server::HandlerResponse::Handled;
    });
    // httplib's own refusals (body too large, bad request line) get a JSON error body like every other.
    http_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string message = reason(res.status);
      if (res.status == 413 && req.get_header_value("Content-Type") == "application/x-www-form-urlencoded") {
        // httplib reads form-encoded bodies (curl -d's default type) only up to 8 KB.
        message = "the body was sent as application/x-www-form-urlencoded (curl -d's default), which is read only up "
                  "to 8 KB; send JSON with 'Content-Type: application/json'";
      }
      res.set_content(dump_json({{"error", message}}), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(dump_json({{"error", "internal error"}}), "application/json");
    });

    errno = 0;
    port_ = options.port() == 0 ? http_.bind_to_any_port(options.host())
                                : (http_.bind_to_port(options.host(), options.port()) ? options.port() : -1);
    if (port_ < 0) {
      const int error = errno;
      std::string why = error != 0 ? std::strerror(error) : "the address does not resolve";
      if (error == EADDRINUSE) why += " (another process listens there: choose another --port, or --port 0 for any free one)";
      if (error == EADDRNOTAVAIL) why += " (not an address of this machine)";
      fail("HTTP server: cannot listen on ", options.host(), ":", options.port(), ": ", why);
    }
    thread_ = std::thread([this] {
      http_.listen_after_bind();
      finished_ = true;
    });
    // httplib's stop() is a no-op until the accept loop runs: wait for it, so a stop right after start is not lost.
    while (!http_.is_running() && !finished_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~HttplibFrontend() override {
    stop();
    wait();
  }

  int port() const override { return port_; }
  bool running() const override { return !finished_ && !stopped_; }
  void stop() override {
    if (!stopped_.exchange(true)) http_.stop();
  }
  void wait() override {
    std::lock_guard<std::mutex> lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  httplib::Server http_;
  int port_ = -1;
  std::thread thread_;
  std::mutex join_mutex_;
  std::atomic<bool> finished_{false}, stopped_{false};
};

}  // namespace

std::unique_ptr<HttpFrontend> make_http_frontend(Server& server, const ServeOptions& options) {
  return std::make_unique<HttplibFrontend>(server, options);
}

}  // namespace clip
