// libFuzzer target: arbitrary bytes through the spec parser and the validator. Anything that
// parses is also re-encoded in both spellings and parsed again, which must succeed and be equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/codec.h"
#include "proto/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = hpo::proto::ParseSpec(text);
  if (!parsed.ok()) return 0;
  (void)hpo::proto::Validate(parsed->document.spec, parsed->spelling);
  auto api = hpo::proto::EncodeCreateRequest(parsed->document.spec);
  auto back = hpo::proto::DecodeCreateRequest(hpo::proto::TextTree{api, false, {}, {}});
  if (!back.ok() || !(*back == parsed->document.spec)) std::abort();
  auto yaml = hpo::proto::ToYaml(hpo::proto::EncodeCrdDocument(parsed->document));
  auto again = hpo::proto::ParseSpec(yaml);
  if (!again.ok() || !(again->document.spec == parsed->document.spec)) std::abort();
  return 0;
}
