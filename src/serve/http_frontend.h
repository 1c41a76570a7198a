#pragma once
// The HTTP side of clip::Server: binds, accepts, turns each HTTP request into a ServeRequest for Server::handle and its
// ServeResponse back into HTTP. http_server.cpp (cpp-httplib) or http_unavailable.cpp (a build without
// CLIP_WITH_HTTP). Internal.
#include <memory>

#include "clip/serve/server.h"

namespace clip {

class HttpFrontend {
 public:
  virtual ~HttpFrontend() = default;
  virtual int port() const = 0;
  /// Stops accepting; thread-safe, idempotent.
  virtual void stop() = 0;
  /// Accepting connections (false once stopped, or when the accept loop ended by itself).
  virtual bool running() const = 0;
  /// Joins the serving threads (after stop(), once the requests being handled are answered).
  virtual void wait() = 0;
};

/// Binds options.host:options.port and starts serving `server` on background threads. Throws clip::Error naming the
/// address when it cannot be bound, or saying which build option is missing.
std::unique_ptr<HttpFrontend> make_http_frontend(Server& server, const ServeOptions& options);

}  // namespace clip
