// libFuzzer target for the coordinator <-> worker wire decoder (proto/messages.h).
//
// Input layout: byte 0 chooses the length of frame 0 (0-3 bytes, so wrong type-frame lengths are
// exercised too); the next bytes are frame 0, the rest is frame 1 (the msgpack body).
//
// Checks, beyond "no crash, no sanitizer report": a rejected input gets a valid Error reply; an
// accepted one is valid, and encoding it and decoding again gives an equal message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/messages.h"

using hpo::proto::wire::DecodeFrames;
using hpo::proto::wire::EncodeFrames;
using hpo::proto::wire::Error;
using hpo::proto::wire::Message;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* bytes = reinterpret_cast<const char*>(data);
  const size_t type_len = std::min<size_t>(data[0] % 4, size - 1);
  std::vector<std::string> frames = {std::string(bytes + 1, type_len),
                                     std::string(bytes + 1 + type_len, size - 1 - type_len)};

  Error reply;
  hpo::Result<Message> decoded = DecodeFrames(frames, &reply);
  if (!decoded.ok()) {
    HPO_CHECK_MSG(reply.Validate().ok(), "the Error reply to a rejected message is invalid");
    return 0;
  }
  HPO_CHECK_MSG(hpo::proto::wire::Validate(*decoded).ok(), "a decoded message does not validate");
  hpo::Result<Message> again = DecodeFrames(EncodeFrames(*decoded));
  HPO_CHECK_MSG(again.ok(), again.status().ToString());
  HPO_CHECK_MSG(*again == *decoded, "re-encoded message decodes to a different value");
  return 0;
}
