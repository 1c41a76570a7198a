// clip::Server's HTTP side in a build without cpp-httplib (CLIP_WITH_HTTP off or not found).
#include "serve/http_frontend.h"

#include "clip/util/error.h"

namespace clip {

std::unique_ptr<HttpFrontend> make_http_frontend(Server&, const ServeOptions&) {
  fail("this libclip was built without its HTTP server (CLIP_WITH_HTTP: cpp-httplib, Debian's libcpp-httplib-dev); "
       "rebuild with it to serve over HTTP, or call clip::Server::handle from your own HTTP stack");
}

}  // namespace clip
