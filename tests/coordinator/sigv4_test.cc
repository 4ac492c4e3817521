// AWS Signature Version 4 (coordinator/sigv4.h) against vectors botocore computed
// (tests/coordinator/sigv4_vectors.py), and every way a request can fail the check.
#include "coordinator/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace hpo::coordinator::sigv4 {
namespace {

struct Vector {
  std::string name, method, path, query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body, service, region, key_id, secret;
  int64_t unix_s;
  std::string canonical, signature;
};

const std::vector<Vector>& Vectors() {
  static const std::vector<Vector> v = {
#include "tests/coordinator/sigv4_vectors.inc"
  };
  return v;
}

Request RequestOf(const Vector& v) { return Request{v.method, v.path, v.query, v.headers, v.body}; }

SecretLookup Only(const std::string& id, const std::string& secret) {
  return [id, secret](const std::string& k) -> std::optional<std::string> {
    if (k == id) return secret;
    return std::nullopt;
  };
}

std::vector<std::string> SignedHeadersOf(const Request& r) {
  for (const auto& [k, v] : r.headers) {
    if (k != "Authorization") continue;
    size_t b = v.find("SignedHeaders=") + 14;
    std::string list = v.substr(b, v.find(',', b) - b);
    std::vector<std::string> out;
    size_t pos = 0;
    while (true) {
      size_t p = list.find(';', pos);
      out.push_back(list.substr(pos, p == std::string::npos ? std::string::npos : p - pos));
      if (p == std::string::npos) break;
      pos = p + 1;
    }
    return out;
  }
  return {};
}

void SetHeader(Request& r, const std::string& name, const std::string& value) {
  for (auto& [k, v] : r.headers) {
    if (k == name) {
      v = value;
      return;
    }
  }
  r.headers.emplace_back(name, value);
}

void DropHeader(Request& r, const std::string& name) {
  r.headers.erase(std::remove_if(r.headers.begin(), r.headers.end(), [&](auto& h) { return h.first == name; }),
                  r.headers.end());
}

VerifyOptions OptionsFor(const Vector& v) {
  VerifyOptions o;
  o.service = v.service;
  return o;
}

TEST(SigV4, BotocoreVectorsHaveTheCanonicalRequestAndSignatureWeCompute) {
  ASSERT_GE(Vectors().size(), 10u);
  for (const auto& v : Vectors()) {
    SCOPED_TRACE(v.name);
    Request r = RequestOf(v);
    std::vector<std::string> signed_headers = SignedHeadersOf(r);
    std::string ours = CanonicalRequest(r, signed_headers);
    std::string raw = CanonicalRequest(r, signed_headers, /*raw_query=*/true);
    EXPECT_TRUE(ours == v.canonical || raw == v.canonical) << "ours:\n" << ours << "\nbotocore:\n" << v.canonical;
    std::string date = AmzDate(v.unix_s);
    std::string scope = date.substr(0, 8) + "/" + v.region + "/" + v.service + "/aws4_request";
    EXPECT_EQ(Signature(v.secret, date.substr(0, 8), v.region, v.service, StringToSign(date, scope, v.canonical)),
              v.signature);
  }
}

TEST(SigV4, AwsTestSuiteGetVanillaHasItsPublishedSignature) {
  const Vector& v = Vectors().front();
  ASSERT_EQ(v.name, "get-vanilla");
  EXPECT_EQ(v.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, EveryBotocoreVectorVerifies) {
  for (const auto& v : Vectors()) {
    SCOPED_TRACE(v.name);
    Verdict d = Verify(RequestOf(v), Only(v.key_id, v.secret), v.unix_s + 60, OptionsFor(v));
    EXPECT_TRUE(d.ok()) << d.error_type << ": " << d.message;
    EXPECT_EQ(d.access_key_id, v.key_id);
  }
}

TEST(SigV4, SignProducesBotocoresAuthorizationHeader) {
  for (const auto& v : Vectors()) {
    SCOPED_TRACE(v.name);
    if (v.name == "query-escapes") continue;  // botocore signs non-canonical escapes raw
    Request r = RequestOf(v);
    std::string want;
    for (const auto& [k, val] : r.headers) {
      if (k == "Authorization") want = val;
    }
    DropHeader(r, "Authorization");
    DropHeader(r, "X-Amz-Date");
    Sign(r, v.key_id, v.secret, v.region, v.service, v.unix_s);
    std::string got;
    for (const auto& [k, val] : r.headers) {
      if (k == "Authorization") got = val;
    }
    EXPECT_EQ(got, want);
  }
}

const Vector& SageMakerVector() {
  for (const auto& v : Vectors()) {
    if (v.name == "sagemaker-list-tuning-jobs") return v;
  }
  std::abort();
}

TEST(SigV4, AnUnsignedRequestIsMissingAuthenticationToken) {
  const Vector& v = SageMakerVector();
  Request r = RequestOf(v);
  DropHeader(r, "Authorization");
  Verdict d = Verify(r, Only(v.key_id, v.secret), v.unix_s);
  EXPECT_EQ(d.http_status, 403);
  EXPECT_EQ(d.error_type, "MissingAuthenticationTokenException");
  EXPECT_EQ(d.message, "Missing Authentication Token");
}

TEST(SigV4, AChangedBodyHeaderMethodOrPathIsASignatureMismatch) {
  const Vector& v = SageMakerVector();
  const std::string mismatch = "The request signature we calculated does not match the signature you provided.";
  std::vector<std::function<void(Request&)>> tamper = {
      [](Request& r) { r.body = R"({"MaxResults": 11})"; },
      [](Request& r) { SetHeader(r, "X-Amz-Target", "SageMaker.StopHyperParameterTuningJob"); },
      [](Request& r) { SetHeader(r, "Host", "127.0.0.1:7781"); },
      [](Request& r) { r.method = "PUT"; },
      [](Request& r) { r.path = "/hpo/v1/jobs"; },
      [](Request& r) { r.query = "x=1"; },
      [](Request& r) { SetHeader(r, "X-Amz-Content-SHA256", Sha256Hex("other")); },
  };
  for (size_t i = 0; i < tamper.size(); ++i) {
    SCOPED_TRACE(i);
    Request r = RequestOf(v);
    tamper[i](r);
    Verdict d = Verify(r, Only(v.key_id, v.secret), v.unix_s);
    EXPECT_EQ(d.http_status, 403);
    EXPECT_EQ(d.error_type, "InvalidSignatureException");
    EXPECT_EQ(d.message.rfind(mismatch, 0), 0u) << d.message;
  }
}

TEST(SigV4, AnUnsignedHeaderMayChangeFreely) {
  const Vector& v = SageMakerVector();
  Request r = RequestOf(v);
  SetHeader(r, "User-Agent", "something else");
  EXPECT_TRUE(Verify(r, Only(v.key_id, v.secret), v.unix_s).ok());
}

TEST(SigV4, TheWrongSecretIsASignatureMismatch) {
  const Vector& v = SageMakerVector();
  Verdict d = Verify(RequestOf(v), Only(v.key_id, v.secret + "x"), v.unix_s);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
}

TEST(SigV4, AnUnknownAccessKeyIsUnrecognized) {
  const Vector& v = SageMakerVector();
  Verdict d = Verify(RequestOf(v), Only("AKIAOTHER", v.secret), v.unix_s);
  EXPECT_EQ(d.http_status, 403);
  EXPECT_EQ(d.error_type, "UnrecognizedClientException");
  EXPECT_EQ(d.message, "The security token included in the request is invalid.");
}

TEST(SigV4, ASignatureOlderThanFifteenMinutesHasExpired) {
  const Vector& v = SageMakerVector();  // signed 2024-02-29T23:59:30Z
  EXPECT_TRUE(Verify(RequestOf(v), Only(v.key_id, v.secret), v.unix_s + 15 * 60).ok());
  Verdict d = Verify(RequestOf(v), Only(v.key_id, v.secret), v.unix_s + 15 * 60 + 1);
  EXPECT_EQ(d.http_status, 403);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
  EXPECT_EQ(d.message,
            "Signature expired: 20240229T235930Z is now earlier than 20240229T235931Z (20240301T001431Z - 15 min.)");
}

TEST(SigV4, ASignatureFromMoreThanFifteenMinutesAheadIsNotYetCurrent) {
  const Vector& v = SageMakerVector();
  Verdict d = Verify(RequestOf(v), Only(v.key_id, v.secret), v.unix_s - 15 * 60 - 1);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
  EXPECT_EQ(d.message.rfind("Signature not yet current: 20240229T235930Z is still later than", 0), 0u) << d.message;
}

TEST(SigV4, TheCredentialScopeMustNameTheServiceTheRegionAndTheDate) {
  const Vector& v = SageMakerVector();
  // Another service: the same request signed for "s3" is refused as AWS words it.
  Request r = RequestOf(v);
  DropHeader(r, "Authorization");
  Sign(r, v.key_id, v.secret, "us-east-1", "s3", v.unix_s);
  Verdict d = Verify(r, Only(v.key_id, v.secret), v.unix_s);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
  EXPECT_EQ(d.message, "Credential should be scoped to correct service: 'sagemaker'. ");
  // Any region by default; only the configured one when set.
  Request eu = RequestOf(v);
  DropHeader(eu, "Authorization");
  Sign(eu, v.key_id, v.secret, "eu-central-1", "sagemaker", v.unix_s);
  EXPECT_TRUE(Verify(eu, Only(v.key_id, v.secret), v.unix_s).ok());
  VerifyOptions only_us;
  only_us.region = "us-east-1";
  d = Verify(eu, Only(v.key_id, v.secret), v.unix_s, only_us);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
  EXPECT_EQ(d.message, "Credential should be scoped to a valid region. ");
  // A scope date that is not the request's date.
  Request day = RequestOf(v);
  for (auto& [k, val] : day.headers) {
    if (k == "Authorization") val.replace(val.find("/20240229/"), 10, "/20240228/");
  }
  d = Verify(day, Only(v.key_id, v.secret), v.unix_s);
  EXPECT_EQ(d.error_type, "InvalidSignatureException");
  EXPECT_NE(d.message.find("Date in Credential scope does not match"), std::string::npos) << d.message;
}

TEST(SigV4, AMalformedAuthorizationHeaderIsAnIncompleteSignature) {
  const Vector& v = SageMakerVector();
  for (const std::string& bad : {std::string("AWS4-HMAC-SHA256 Credential=AKIAHPOTESTKEY000001/20240229/us-east-1/"
                                             "sagemaker/aws4_request, SignedHeaders=host;x-amz-date"),
                                 std::string("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00"),
                                 std::string("AWS4-HMAC-SHA256 Credential=AKIA/20240229/us-east-1, "
                                             "SignedHeaders=host;x-amz-date;x-amz-target, Signature=00")}) {
    SCOPED_TRACE(bad);
    Request r = RequestOf(v);
    SetHeader(r, "Authorization", bad);
    Verdict d = Verify(r, Only(v.key_id, v.secret), v.unix_s);
    EXPECT_EQ(d.http_status, 400);
    EXPECT_EQ(d.error_type, "IncompleteSignatureException");
  }
  Request basic = RequestOf(v);
  SetHeader(basic, "Authorization", "Basic dXNlcjpwYXNz");
  EXPECT_EQ(Verify(basic, Only(v.key_id, v.secret), v.unix_s).error_type, "IncompleteSignatureException");
}

TEST(SigV4, HostAndTheActionHeaderMustBeSigned) {
  const Vector& v = SageMakerVector();
  Request r = RequestOf(v);
  for (auto& [k, val] : r.headers) {
    if (k == "Authorization") {
      size_t b = val.find("SignedHeaders=") + 14;
      val.replace(b, val.find(',', b) - b, "content-type;host;x-amz-date");
    }
  }
  Verdict d = Verify(r, Only(v.key_id, v.secret), v.unix_s);
  EXPECT_EQ(d.error_type, "IncompleteSignatureException");
  EXPECT_NE(d.message.find("X-Amz-Target"), std::string::npos);
}

TEST(SigV4, AmzDatesRoundTripAndMalformedOnesAreRejected) {
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
  EXPECT_EQ(ParseAmzDate("20150830T123600Z"), 1440938160);
  EXPECT_FALSE(ParseAmzDate("2015-08-30T12:36:00Z"));
  EXPECT_FALSE(ParseAmzDate("20151330T123600Z"));
  EXPECT_FALSE(ParseAmzDate("20150830T123600"));
}

TEST(SigV4Credentials, ReadsTheAwsCredentialsIniFormatWithEveryProfile) {
  auto c = Credentials::Parse(
      "# team keys\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1/x+y\nregion = us-east-1\n\n"
      "[ci]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token = t\n",
      "creds");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->size(), 2u);
  EXPECT_EQ(c->SecretOf("AKIA1"), "s1/x+y");
  EXPECT_EQ(c->SecretOf("AKIA2"), "s2");
  EXPECT_FALSE(c->SecretOf("AKIA3"));
}

TEST(SigV4Credentials, ReadsOnePairPerLine) {
  auto c = Credentials::Parse("# id secret\nAKIA1 s1\n\n  AKIA2\ts2  \n", "keys.txt");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->SecretOf("AKIA2"), "s2");
}

TEST(SigV4Credentials, BadFilesAreErrorsNamingTheLine) {
  struct Case {
    std::string text, want;
  } cases[] = {
      {"AKIA1 s1\nAKIA2\n", "keys:2: expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`"},
      {"AKIA1 s1 extra\n", "keys:1:"},
      {"[p]\naws_access_key_id = AKIA1\n", "keys:1: profile [p] has aws_access_key_id but no aws_secret_access_key"},
      {"[p]\njunk\n", "keys:2: expected `name = value`"},
      {"AKIA1 s1\nAKIA1 s2\n", "keys:2: access key id AKIA1 appears twice"},
      {"# nothing\n", "keys: no access keys found"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = Credentials::Parse(c.text, "keys");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find("s1"), std::string::npos) << "secrets never appear in errors";
  }
  EXPECT_FALSE(Credentials::Load("/nonexistent/credentials").ok());
}

// An operator pass: a forgotten `=` put the secret key in the log (the coordinator logs why a
// reloaded file was refused).
TEST(SigV4Credentials, AMalformedLineIsNamedWithoutTheSecretOnIt) {
  auto r = Credentials::Parse("[default]\naws_access_key_id = AKID\naws_secret_access_key SUPERSECRETVALUE\n", "creds");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("creds:3: expected `name = value` inside profile [default], got a line "
                                      "without `=` that begins aws_secret_access_key (the rest is not shown)"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("SUPERSECRET"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace hpo::coordinator::sigv4
