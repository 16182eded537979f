// [s3][checksum] Additional checksums on PUT (checksum=crc32c|crc64nvme in
// the replica URL): the CRCs against published check values, and the
// header values moto keeps with the object against an independent Python
// implementation. Plain headers, never aws-chunked.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "http/http_client.h"
#include "moto_server.h"
#include "store/replica_url.h"
#include "store/s3/checksum.h"
#include "store/s3/s3_store.h"
#include "test_util.h"

using namespace replite;

TEST_CASE("s3 checksum: CRC-32C and CRC-64/NVME check values", "[s3][checksum]") {
  s3::Crc c32(s3::ChecksumAlgorithm::kCrc32c), c64(s3::ChecksumAlgorithm::kCrc64Nvme);
  c32.Update("1234", 4);  // in two pieces: the state carries over
  c32.Update("56789", 5);
  c64.Update("123456789", 9);
  CHECK(c32.value() == 0xE3069283u);
  CHECK(c64.value() == 0xAE8B14860A799888ull);
  CHECK(c32.HeaderName() == "x-amz-checksum-crc32c");
  CHECK(c32.HeaderValue() == "4waSgw==");
  CHECK(c64.HeaderName() == "x-amz-checksum-crc64nvme");
  s3::ChecksumAlgorithm a;
  CHECK(s3::ParseChecksumAlgorithm("md5", &a).code() == Code::kInvalidArgument);
}

TEST_CASE("s3 checksum: moto keeps the crc32c and crc64nvme we send, equal to an independent computation", "[s3][checksum]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  const std::string bucket = "replite-checksum";
  REQUIRE(m->CreateBucket(bucket).ok());
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  test::TempDir dir;
  const std::string body(100000, 'x');
  std::ofstream(dir / "file") << body;
  for (const std::string algo : {"crc32c", "crc64nvme"}) {
    ReplicaUrl url;
    REQUIRE(ParseReplicaUrl("s3://" + bucket + "/p?endpoint=" + m->endpoint() + "&region=us-east-1&checksum=" + algo,
                            &url).ok());
    std::shared_ptr<ObjectStore> store;
    REQUIRE(OpenS3Store(url, http, nullptr, StoreConfig(), &store).ok());
    REQUIRE(store->Put("p/" + algo + "/mem", "hello, checksums").ok());
    REQUIRE(store->PutFile("p/" + algo + "/file", dir / "file").ok());
  }
  ReplicaUrl bad;
  REQUIRE(ParseReplicaUrl("s3://" + bucket + "/p?endpoint=" + m->endpoint() + "&checksum=sha1", &bad).ok());
  std::shared_ptr<ObjectStore> none;
  CHECK(OpenS3Store(bad, http, nullptr, StoreConfig(), &none).code() == Code::kInvalidArgument);

  std::ofstream(dir / "check.py") <<
      "import base64, boto3\n"
      "def crc(data, poly, bits):\n"
      "    mask = (1 << bits) - 1\n"
      "    c = mask\n"
      "    for b in data:\n"
      "        c ^= b\n"
      "        for _ in range(8):\n"
      "            c = (c >> 1) ^ poly if c & 1 else c >> 1\n"
      "    return base64.b64encode((c ^ mask).to_bytes(bits // 8, 'big')).decode()\n"
      "s3 = boto3.client('s3', endpoint_url='" + m->endpoint() + "', region_name='us-east-1')\n"
      "for algo, poly, bits in (('crc32c', 0x82F63B78, 32), ('crc64nvme', 0x9A6C9329AC4BC9B5, 64)):\n"
      "    for name, data in (('mem', b'hello, checksums'), ('file', b'x' * 100000)):\n"
      "        h = s3.head_object(Bucket='" + bucket + "', Key='p/%s/%s' % (algo, name), ChecksumMode='ENABLED')\n"
      "        got = h['ResponseMetadata']['HTTPHeaders'].get('x-amz-checksum-' + algo)\n"
      "        want = crc(data, poly, bits)\n"
      "        assert got == want, (algo, name, got, want)\n"
      "print('ok')\n";
  std::string out;
  const int rc = test::Shell("python3 " + dir / "check.py", &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("ok") != std::string::npos);
}
