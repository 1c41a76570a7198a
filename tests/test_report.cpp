// The training report as people read it: the demo run's report rendered in headless Chromium (no console errors,
// the evaluation table holding the demo's numbers, one heatmap cell per class pair, the example thumbnails shown,
// a screenshot beside it), evaluations as charts on a 0-100% axis once there are three, long runs averaged down,
// resumed runs' repeated steps replaced, and a damaged details file said, not fatal.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "clip/train/report.h"
#include "test_util.h"
#include "train/report_chart.h"

namespace fs = std::filesystem;

namespace {

using clip::test::count_of;
using clip::test::TempDir;

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// The text between the first `open` and the next `close` ("" when absent).
std::string between(const std::string& text, const std::string& open, const std::string& close) {
  const size_t a = text.find(open);
  if (a == std::string::npos) return "";
  const size_t b = text.find(close, a);
  return text.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

// Every tick label on a percentage axis (">40%</text>"), as numbers. (std::regex runs out of memory on pages this
// long.)
std::vector<int> percent_ticks(const std::string& html) {
  std::vector<int> out;
  for (size_t end = html.find("%</text>"); end != std::string::npos; end = html.find("%</text>", end + 1)) {
    size_t begin = end;
    while (begin > 0 && (std::isdigit(static_cast<unsigned char>(html[begin - 1])) || html[begin - 1] == '-')) --begin;
    if (begin < end && begin > 0 && html[begin - 1] == '>') out.push_back(std::stoi(html.substr(begin, end - begin)));
  }
  return out;
}

// The points attribute of every line drawn.
std::vector<std::string> polylines(const std::string& html) {
  std::vector<std::string> out;
  const std::string open = "<polyline points=\"";
  for (size_t at = html.find(open); at != std::string::npos; at = html.find(open, at + 1)) {
    const size_t begin = at + open.size();
    out.push_back(html.substr(begin, html.find('"', begin) - begin));
  }
  return out;
}

TEST(ReportChart, TicksAreRoundNumbersCoveringTheRange) {
  const std::vector<double> loss = clip::report::nice_ticks(3.57, 5.45, 5);
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_DOUBLE_EQ(loss.front(), 3.5);
  EXPECT_DOUBLE_EQ(loss.back(), 5.5);
  const std::vector<double> steps = clip::report::nice_ticks(20, 702, 6);
  EXPECT_DOUBLE_EQ(steps.front(), 0);
  EXPECT_DOUBLE_EQ(steps.back(), 800);
  EXPECT_DOUBLE_EQ(steps[1] - steps[0], 100);
  const std::vector<double> flat = clip::report::nice_ticks(12.67, 12.67, 5);  // one value: a range around it
  EXPECT_LT(flat.front(), 12.67);
  EXPECT_GT(flat.back(), 12.67);
  const std::vector<double> almost_flat = clip::report::nice_ticks(0.001, 0.0010000000000000002, 5);  // averaged
  EXPECT_LT(almost_flat.size(), 10u);
  EXPECT_LT(almost_flat.front(), 0.001);
  const std::vector<double> lr = clip::report::nice_ticks(1e-8, 2e-3, 5);
  EXPECT_DOUBLE_EQ(lr.back(), 2e-3);
  EXPECT_EQ(clip::report::format_value(0.8733, true), "87.33%");
  EXPECT_EQ(clip::report::format_value(3.5755884, false), "3.576");
}

TEST(ReportChart, LongSeriesAreAveragedDownKeepingTheLastValue) {
  clip::report::Series series;
  for (int i = 1; i <= 20000; ++i) series.push_back({double(i), i % 2 ? 1.0 : 3.0});
  series.back().y = 7;  // the last logged value: in the last mean only
  size_t per_point = 0;
  const clip::report::Series down = clip::report::downsample(series, 400, &per_point);
  EXPECT_EQ(per_point, 50u);
  EXPECT_EQ(down.size(), 400u);
  EXPECT_DOUBLE_EQ(down.front().y, 2.0);  // the mean of 1, 3, 1, 3, ...
  EXPECT_DOUBLE_EQ(down.front().x, 25.5);
  EXPECT_DOUBLE_EQ(down.back().x, 19975.5);
  EXPECT_DOUBLE_EQ(down.back().y, 2.08);  // 24 x 1, 25 x 3 and the 7
}

// The demo's run (scripts/demo: Fashion-MNIST, 702 steps, zero-shot on the 10,000 test images): its metrics.jsonl,
// config.json and zeroshot_details.json as clip_train wrote them, with the example images they name
// (tests/data/report/fashion_mnist, see FIXTURES.md).
TEST(Report, DemoRunReadsInChromium) {
  CLIP_REQUIRE_FEATURE(png);   // the example images
  CLIP_REQUIRE_FEATURE(jpeg);  // their thumbnails
  const fs::path fixture = clip::test::data("report/fashion_mnist");
  // Written into the build folder, not a temporary one: the screenshot is for people to look at.
  const fs::path out = fs::path(CLIP_BIN_DIR).parent_path() / "test_output" / "report";
  fs::remove_all(out);
  fs::create_directories(out);
  nlohmann::json details = nlohmann::json::parse(read(fixture / "zeroshot_details.json"));
  for (auto& example : details["examples"]) {
    example["path"] = (fixture / example["path"].get<std::string>()).string();
  }
  write(out / "zeroshot_details.json", details.dump());
  clip::ReportSources sources;
  sources.metrics = (fixture / "metrics.jsonl").string();
  sources.zeroshot_details = (out / "zeroshot_details.json").string();
  sources.config_json = read(fixture / "config.json");
  sources.title = "clip_train: fashion_vit";
  const fs::path html_path = out / "report.html";
  clip::write_report(sources, html_path.string());
  const std::string html = read(html_path);
  std::printf("[ measured ] the demo's report: %.0f KB\n", double(html.size()) / 1024);
  EXPECT_LT(html.size(), size_t(2) << 20) << "one self-contained file of a few MB at most";
  EXPECT_EQ(html.find("<script"), std::string::npos) << "no scripts";
  EXPECT_EQ(html.find("http"), std::string::npos) << "no network references";
  EXPECT_EQ(html.find(" src=\"data:image/jpeg;base64,"), html.find(" src=\"")) << "images are embedded";

  // The demo's numbers, from its metrics.jsonl's evaluation line, in the evaluation table as percentages.
  nlohmann::json eval;
  std::ifstream metrics(sources.metrics);
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("type", "") == "eval") eval = j;
  }
  ASSERT_TRUE(eval.is_object());
  const std::string table = between(html, "<table class=\"evals\">", "</table>");
  ASSERT_FALSE(table.empty()) << "one evaluation is a table, not a chart of one point";
  for (const char* key : {"zeroshot_top1", "zeroshot_top5", "zeroshot_mean_per_class"}) {
    const std::string value = clip::report::format_value(eval[key].get<double>(), true);
    EXPECT_CONTAINS(table, ">" + value + "<");
    std::printf("[ measured ] %s in the table: %s\n", key, value.c_str());
  }
  EXPECT_CONTAINS(table, ">10,000<");  // the images evaluated: a count, not a percentage

  // Training charts: units in the titles, ticks and gridlines, the last value.
  for (const char* title :
       {"throughput (samples/s)", "data wait (milliseconds per step)", "learning rate", "training loss"}) {
    EXPECT_CONTAINS(html, title);
  }
  const size_t charts = count_of(html, "<figure class=\"chart\">");
  EXPECT_EQ(charts, 5u) << "loss, learning rate, logit scale, throughput, data wait";
  EXPECT_GE(count_of(html, "class=\"g\""), 5 * charts) << "gridlines on both axes";
  EXPECT_EQ(count_of(html, "last: <b>"), charts);
  for (const int tick : percent_ticks(html)) EXPECT_LE(tick, 100);
  // The summary: model and parameters, data, steps, wall time, throughput, final metrics, command line.
  const std::string summary = between(html, "<table class=\"summary\">", "</table>");
  for (const char* row :
       {">model<", ">data<", ">steps<", ">wall time<", ">throughput<", ">final evaluation<", ">command<",
        ">run it again<", "7.57 M parameters", "702 of 702", "59,904 samples per epoch"}) {
    EXPECT_CONTAINS(summary, row);
  }

  const auto page = clip::test::render_in_chromium(html_path.string(), (out / "report.png").string());
  if (!page.ran) GTEST_SKIP() << "headless chromium could not run here (scripts/setup installs Debian's chromium)";
  EXPECT_TRUE(page.console.empty()) << page.console.front();
  const size_t classes = details["classes"].size();
  EXPECT_EQ(classes, 10u);
  EXPECT_EQ(count_of(page.dom, "<td class=\"cell\""), classes * classes) << "one heatmap cell per class pair";
  EXPECT_EQ(count_of(page.dom, "<figure class=\"example"), details["examples"].size());
  EXPECT_EQ(count_of(page.dom, "<img class=\"thumb"), details["examples"].size()) << "every example's thumbnail";
  EXPECT_EQ(count_of(page.dom, "class=\"missing\""), 0u);
  EXPECT_GT(count_of(page.dom, "<figure class=\"example wrong\""), 0u) << "mistakes shown";
  EXPECT_GT(count_of(page.dom, "<figure class=\"example right\""), 0u) << "right answers shown";
  ASSERT_TRUE(fs::exists(out / "report.png"));
  std::printf("[ measured ] screenshot: %s (%.0f KB)\n", (out / "report.png").c_str(),
              double(fs::file_size(out / "report.png")) / 1024);
}

// A long run with five evaluations: evaluations become charts whose accuracy axis is exactly 0-100%, and 20,000
// logged windows are drawn as a few hundred points.
TEST(Report, LongRunIsChartedReadably) {
  TempDir tmp;
  std::string lines = "{\"type\":\"start\",\"step\":0,\"total_steps\":200000,\"time\":1000,\"model\":\"ViT-B-32\"}\n";
  for (int i = 1; i <= 20000; ++i) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "{\"type\":\"train\",\"step\":%d,\"loss\":%.4f,\"lr\":0.001,\"logit_scale\":20,\"samples_per_s\":900,"
                  "\"data_wait_s\":0.01,\"time\":%d}\n",
                  i * 10, 5.0 / (1 + i * 0.001), 1000 + i);
    lines += line;
    if (i % 4000 == 0) {
      std::snprintf(line, sizeof line,
                    "{\"type\":\"eval\",\"step\":%d,\"zeroshot_top1\":%.3f,\"zeroshot_top5\":0.999,"
                    "\"zeroshot_images\":1000,\"time\":%d}\n",
                    i * 10, 0.2 * i / 4000, 1000 + i);
      lines += line;
    }
  }
  write(tmp / "metrics.jsonl", lines);
  clip::write_report({tmp / "metrics.jsonl", "", "", "long"}, tmp / "report.html");
  const std::string html = read(tmp / "report.html");
  std::printf("[ measured ] report of 20,000 windows and 5 evaluations: %.0f KB\n", double(html.size()) / 1024);
  EXPECT_LT(html.size(), size_t(300) << 10);
  EXPECT_EQ(html.find("<table class=\"evals\">"), std::string::npos) << "five evaluations are a chart";
  EXPECT_CONTAINS(html, "zero-shot accuracy (%)");
  const std::vector<int> ticks = percent_ticks(html);
  ASSERT_FALSE(ticks.empty());
  EXPECT_EQ(*std::min_element(ticks.begin(), ticks.end()), 0);
  EXPECT_EQ(*std::max_element(ticks.begin(), ticks.end()), 100) << "accuracy axes are 0-100%, never beyond";
  size_t most = 0;
  for (const std::string& points : polylines(html)) most = std::max(most, count_of(points, ","));
  EXPECT_LE(most, 400u) << "points per line";
  EXPECT_CONTAINS(html, "each point: the mean of 50 logged values");
  EXPECT_CONTAINS(html, "last: <b>0.2381</b> at step 200,000") << "the last value logged, not the last mean";
  EXPECT_CONTAINS(html, "5 h 33 min");  // 20,000 s from the start line to the last line
}

// A run stopped after step 10 (having logged steps 11 and 12 past its checkpoint at 10) and resumed there: the
// second invocation's steps replace the first's, and the wall time is the two invocations' sum.
TEST(Report, ResumedRunReplacesRepeatedStepsAndSumsItsTime) {
  TempDir tmp;
  std::string lines = "{\"type\":\"start\",\"step\":0,\"time\":100,\"command\":\"clip_train --config a.json\"}\n";
  for (int step = 1; step <= 12; ++step) {
    lines += "{\"type\":\"train\",\"step\":" + std::to_string(step) +
             ",\"loss\":9,\"time\":" + std::to_string(100 + 5 * step) + "}\n";
  }
  lines += "{\"type\":\"train\",\"step\":13,\"lo";  // cut by the crash
  lines +=
      "\n{\"type\":\"start\",\"step\":10,\"time\":1000,\"resumed\":true,\"command\":\"clip_train --config a.json "
      "--resume latest\"}\n";
  for (int step = 11; step <= 20; ++step) {
    lines += "{\"type\":\"train\",\"step\":" + std::to_string(step) +
             ",\"loss\":1,\"time\":" + std::to_string(1000 + step) + "}\n";
  }
  write(tmp / "metrics.jsonl", lines);
  clip::write_report({tmp / "metrics.jsonl", "", "", "resumed"}, tmp / "report.html");
  const std::string html = read(tmp / "report.html");
  EXPECT_CONTAINS(html, "last: <b>1</b> at step 20");
  // Points: steps 1-10 at loss 9, then 11-20 at loss 1; nothing of the first invocation's 11 and 12.
  const std::vector<std::string> drawn = polylines(html);
  ASSERT_EQ(drawn.size(), 1u);
  EXPECT_EQ(count_of(drawn[0], ","), 20u) << drawn[0];
  EXPECT_CONTAINS(html, "2 invocations (resumed)");
  EXPECT_CONTAINS(html, "1 min 20 s");  // 60 s (100 to 160) + 20 s (1000 to 1020)
  EXPECT_CONTAINS(html, "clip_train --config a.json --resume latest");
}

TEST(Report, DamagedDetailsAreSaidAndTheReportIsStillWritten) {
  TempDir tmp;
  write(tmp / "metrics.jsonl", "{\"type\":\"train\",\"step\":1,\"loss\":2}\n");
  for (const char* bad : {"{\"step\":1",
                          "{\"step\":1,\"images\":2,\"acc1\":0.5,\"classes\":[\"a\",\"b\"],"
                          "\"confusion\":[[0,0,1],[1,2,1]],\"examples\":[]}",
                          "{\"step\":1,\"images\":2,\"acc1\":0.5,\"classes\":[\"a\"],\"confusion\":[[0,0,2]],"
                          "\"examples\":[{\"path\":\"x.png\",\"label\":0,\"top\":[3],\"p\":[1]}]}",
                          "{\"step\":1,\"images\":2,\"acc1\":0.5,\"classes\":[\"a\"],\"confusion\":[[0,0,\"2\"]],"
                          "\"examples\":[]}"}) {
    write(tmp / "zeroshot_details.json", bad);
    clip::write_report({tmp / "metrics.jsonl", tmp / "zeroshot_details.json", "", "damaged"}, tmp / "report.html");
    const std::string html = read(tmp / "report.html");
    const std::string problem = between(html, "<p class=\"problem\">", "</p>");
    std::printf("[ message  ] %s\n", problem.c_str());
    EXPECT_CONTAINS(problem, "zeroshot_details.json: not shown");
    EXPECT_CONTAINS(html, "training loss");
  }
  EXPECT_CONTAINS(clip::test::error_of([&] {
                    clip::write_report({tmp / "none.jsonl", "", "", ""}, tmp / "r.html");
                  }),
                  "none.jsonl: cannot open the metrics to report");
}

// Lines a person or another program could have written: wrong types, huge numbers, no step. The report is still
// written, from the lines that make sense.
TEST(Report, OddLinesArePassedOver) {
  TempDir tmp;
  write(tmp / "metrics.jsonl",
        "{\"type\":5,\"step\":1,\"loss\":3}\n"
        "{\"type\":\"start\",\"step\":0,\"command\":3,\"parameters\":1e30,\"total_steps\":\"many\",\"time\":null}\n"
        "{\"type\":\"train\",\"step\":\"2\",\"loss\":2}\n"
        "{\"type\":\"train\",\"loss\":2}\n"
        "[1,2,3]\n"
        "{\"type\":\"train\",\"step\":3,\"loss\":\"low\",\"lr\":0.1}\n"
        "{\"type\":\"train\",\"step\":4,\"loss\":1e308,\"lr\":0.1}\n"
        "{\"type\":\"eval\",\"step\":4,\"zeroshot_top1\":0.5,\"custom_score\":12.5}\n");
  clip::write_report({tmp / "metrics.jsonl", "", "{\"output_dir\": 7, \"resume\": [1]}", "odd"}, tmp / "r.html");
  const std::string html = read(tmp / "r.html");
  EXPECT_CONTAINS(html, ">50.00%<");
  EXPECT_CONTAINS(html, ">custom_score<");
  EXPECT_CONTAINS(html, ">12.5<");
  EXPECT_EQ(html.find(" parameters"), std::string::npos) << "an out-of-range parameter count is left out";
  EXPECT_CONTAINS(html, "last: <b>1e+308</b> at step 4");
}

// A run that evaluated at step 50, crashed, and resumed from its checkpoint at step 40: the evaluation of the lost
// steps is not the final one, and its details are said to be replaced at the next evaluation.
TEST(Report, EvaluationOfStepsAResumeWentBackOnIsNotShownAsFinal) {
  TempDir tmp;
  std::string lines = "{\"type\":\"start\",\"step\":0,\"time\":0}\n";
  for (int step = 10; step <= 50; step += 10) {
    lines += "{\"type\":\"train\",\"step\":" + std::to_string(step) + ",\"loss\":2,\"time\":" + std::to_string(step) + "}\n";
  }
  lines += "{\"type\":\"eval\",\"step\":30,\"zeroshot_top1\":0.3}\n{\"type\":\"eval\",\"step\":50,\"zeroshot_top1\":0.5}\n";
  lines += "{\"type\":\"start\",\"step\":40,\"resumed\":true,\"time\":100}\n{\"type\":\"train\",\"step\":45,\"loss\":1,\"time\":105}\n";
  write(tmp / "metrics.jsonl", lines);
  write(tmp / "zeroshot_details.json",
        "{\"step\":50,\"images\":2,\"acc1\":0.5,\"classes\":[\"a\",\"b\"],\"confusion\":[[0,0,1],[1,0,1]],\"examples\":[]}");
  clip::write_report({tmp / "metrics.jsonl", tmp / "zeroshot_details.json", "", "went back"}, tmp / "r.html");
  const std::string html = read(tmp / "r.html");
  EXPECT_CONTAINS(html, "<b>30.00%</b> at step 30");
  EXPECT_EQ(html.find("50.00%"), std::string::npos);
  EXPECT_CONTAINS(html, "The last zero-shot evaluation (step 50) is of steps that the run went back on");
  EXPECT_EQ(count_of(html, "<td class=\"cell\""), 0u);
}

// 100 classes: the heatmap keeps the 40 most involved in mistakes, the per-class table the worst and the best, and
// a probability that was NaN (null in the file) reads n/a instead of losing the section.
TEST(Report, ManyClassesStayReadable) {
  TempDir tmp;
  write(tmp / "metrics.jsonl", "{\"type\":\"train\",\"step\":1,\"loss\":2}\n");
  nlohmann::json details = {{"step", 1}, {"images", 0}, {"acc1", 0.5}, {"classes", nlohmann::json::array()},
                            {"confusion", nlohmann::json::array()}, {"examples", nlohmann::json::array()}};
  for (int c = 0; c < 100; ++c) {
    details["classes"].push_back("class <" + std::to_string(c) + ">");
    details["confusion"].push_back({c, c, 10});
    if (c % 2) details["confusion"].push_back({c, (c + 1) % 100, c});  // odd classes: mistakes growing with c
  }
  details["examples"].push_back({{"path", "missing.png"}, {"label", 99}, {"top", {0, 99}}, {"p", {nullptr, 0.5}}});
  write(tmp / "zeroshot_details.json", details.dump());
  clip::write_report({tmp / "metrics.jsonl", tmp / "zeroshot_details.json", "", "many"}, tmp / "r.html");
  const std::string html = read(tmp / "r.html");
  EXPECT_EQ(count_of(html, "<td class=\"cell\""), 40u * 40u);
  EXPECT_CONTAINS(html, "The 40 of 100 classes most involved in mistakes are shown.");
  EXPECT_CONTAINS(html, "class &lt;99&gt;") << "escaped";
  EXPECT_CONTAINS(html, "classes in between");
  EXPECT_EQ(count_of(html, "<figure class=\"example"), 1u);
  EXPECT_CONTAINS(html, "<span class=\"p\">n/a</span>");
  EXPECT_CONTAINS(html, "class=\"missing\"") << "an example whose image is gone says so";
}

}  // namespace
