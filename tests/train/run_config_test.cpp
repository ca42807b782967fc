// RUN/config.json as --resume reads it (train/trainer.h parse_run_config): a real file reads back; a damaged one
// is a pneumo::Error naming the file and the key, never a JSON library exception (fuzz_config runs the same).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kernels/check.h"
#include "train/data_test_util.h"
#include "train/trainer.h"

namespace pneumo {
namespace {

using json = nlohmann::json;

std::string seed_text() { return test::read_bytes(PNEUMO_TEST_FIXTURES "/../fuzz/seeds/config/run-config.json"); }

// The error must be the engine's (so the CLI prints it as one line) and mention every needle.
void expect_config_error(const std::string& text, std::initializer_list<std::string> needles) {
  try {
    (void)train::parse_run_config(text, "RUN/config.json");
    ADD_FAILURE() << "accepted: " << text.substr(0, 80);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' missing from: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a pneumo::Error: " << e.what();
  }
}

TEST(RunConfig, ARealConfigReadsBack) {
  const std::string text = seed_text();
  ASSERT_FALSE(text.empty());
  const train::TrainConfig c = train::parse_run_config(text, "RUN/config.json");
  EXPECT_EQ(c.model, "unet_se50");
  EXPECT_EQ(c.size, 256);
  EXPECT_EQ(c.seed, 1992u);
  EXPECT_DOUBLE_EQ(c.lr, 5e-4);
  EXPECT_EQ(c.tail, (std::vector<double>{1e-5, 1e-5, 5e-6, 5e-6}));
  EXPECT_EQ(c.loss, "dice+bce");
}

TEST(RunConfig, DamagedConfigsAreErrorsNamingTheFileAndKey) {
  const json good = json::parse(seed_text());
  expect_config_error("", {"RUN/config.json", "not valid JSON"});
  expect_config_error(seed_text().substr(0, 200), {"RUN/config.json", "not valid JSON"});
  expect_config_error("[1,2]", {"RUN/config.json", "no \"settings\""});
  expect_config_error(R"({"settings": 3})", {"RUN/config.json", "must be an object"});
  auto with = [&](const std::string& key, const json& v) {
    json j = good;
    if (v.is_discarded()) j["settings"].erase(key);
    else j["settings"][key] = v;
    return j.dump();
  };
  expect_config_error(with("lr", json::value_t::discarded), {"RUN/config.json", "settings.lr", "missing"});
  expect_config_error(with("lr", "fast"), {"RUN/config.json", "settings.lr", "wrong type"});
  expect_config_error(with("size", 4294967552ull), {"settings.size", "out of range"});
  expect_config_error(with("size", -4294967552ll), {"settings.size", "out of range"});
  expect_config_error(with("seed", -1), {"settings.seed", "out of range"});
  expect_config_error(with("size", 2.5), {"settings.size", "wrong type"});
  expect_config_error(with("tail", json::array({1e-5, "x"})), {"settings.tail"});
  expect_config_error(with("skip_bad", 1), {"settings.skip_bad", "wrong type"});
}

TEST(RunConfig, ResumeWithADamagedConfigNamesIt) {
  test::TempDir d;
  test::write_text(d.file("run/config.json"), "{\"settings\": {\"model\": 7}}");
  train::TrainConfig cfg;
  cfg.out = d.file("run");
  try {
    (void)train::run_training(cfg, /*resume=*/true);
    ADD_FAILURE() << "resumed from a damaged config.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.file("run/config.json")), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("settings.model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pneumo
