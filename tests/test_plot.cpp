// test_plot.cpp: the helpers behind the examples' figures and options (examples/common/): percentiles,
// axis ticks, the SVG writer, atomic file writes, command-line parsing and the progress line.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "examples/common/args.h"
#include "examples/common/atomic_file.h"
#include "examples/common/percentile.h"
#include "examples/common/progress.h"
#include "examples/common/svg_plot.h"
#include "test_requirements.h"

using namespace examples;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

Plot example_plot() {
  Plot plot;
  plot.title = "Test accuracy & more";
  plot.x_label = "training step";
  plot.y_label = "test accuracy";
  plot.bands.push_back({"15th-85th percentile", "#1f77b4", {0, 100, 200}, {-1, -0.5, -0.2}, {1, 0.6, 0.3}});
  plot.lines.push_back({"with BN <lr 0.5>", "#d62728", {0, 100, 200}, {0.1, 0.7, 0.85}});
  return plot;
}

}  // namespace

TEST_SUITE("percentile") {
  TEST_CASE("percentile interpolates linearly between sorted neighbours") {
    // sorted {1,2,3,4}: position q/100*3; 15 -> 0.45 -> 1.45, 50 -> 1.5 -> 2.5, 85 -> 2.55 -> 3.55
    const auto p = percentiles({4, 1, 3, 2}, {15, 50, 85});
    CHECK(p[0] == doctest::Approx(1.45));
    CHECK(p[1] == doctest::Approx(2.5));
    CHECK(p[2] == doctest::Approx(3.55));
  }
  TEST_CASE("percentile hits the extremes at 0 and 100 and a lone value everywhere") {
    CHECK(percentile({5, -2, 9}, 0) == -2);
    CHECK(percentile({5, -2, 9}, 100) == 9);
    CHECK(percentile({7}, 85) == 7);
    CHECK(percentile({0, 10}, 15) == doctest::Approx(1.5));
  }
  TEST_CASE("percentile of a sample with NaN is NaN") {
    CHECK(std::isnan(percentile({1, std::numeric_limits<double>::quiet_NaN(), 3}, 50)));
  }
  TEST_CASE("percentile rejects an empty sample and q outside [0, 100]") {
    CHECK_THROWS_AS(percentile({}, 50), std::invalid_argument);
    CHECK_THROWS_AS(percentile({1, 2}, 101), std::invalid_argument);
    CHECK_THROWS_AS(percentile({1, 2}, -1), std::invalid_argument);
  }
}

TEST_SUITE("svg_plot") {
  TEST_CASE("nice ticks are 1, 2 or 5 times a power of ten and cover the range") {
    Ticks unit = nice_ticks(0, 1);
    CHECK(unit.step == doctest::Approx(0.2));
    REQUIRE(unit.values.size() == 6);
    CHECK(unit.values.front() == 0);
    CHECK(unit.values.back() == doctest::Approx(1));

    Ticks steps = nice_ticks(0, 5000);
    CHECK(steps.step == doctest::Approx(1000));
    CHECK(steps.values.back() == doctest::Approx(5000));

    Ticks mixed = nice_ticks(-3.7, 2.2);
    CHECK(mixed.step == doctest::Approx(1));
    CHECK(mixed.values.front() == doctest::Approx(-4));
    CHECK(mixed.values.back() == doctest::Approx(3));
  }
  TEST_CASE("nice ticks of a single value still span a range around it") {
    Ticks t = nice_ticks(2, 2);
    CHECK(t.values.front() < 2);
    CHECK(t.values.back() > 2);
  }
  TEST_CASE("tick labels carry the decimals their step needs and no negative zero") {
    CHECK(format_tick(0.25, 0.05) == "0.25");
    CHECK(format_tick(3000, 1000) == "3000");
    CHECK(format_tick(0.4, 0.2) == "0.4");
    CHECK(format_tick(-1e-17, 0.2) == "0.0");
  }
  TEST_CASE("a plot renders its title, axis labels, legend and escapes XML characters") {
    const std::string svg = render_svg(example_plot());
    CHECK(svg.find("Test accuracy &amp; more") != std::string::npos);
    CHECK(svg.find("training step") != std::string::npos);
    CHECK(svg.find("test accuracy") != std::string::npos);
    CHECK(svg.find("with BN &lt;lr 0.5&gt;") != std::string::npos);
    CHECK(svg.find("15th-85th percentile") != std::string::npos);
    CHECK(count(svg, "<polyline") == 1);
    CHECK(count(svg, "<polygon") == 1);
  }
  TEST_CASE("a NaN splits a line into two pieces") {
    Plot plot;
    plot.lines.push_back({"diverged", "black", {0, 1, 2, 3, 4}, {1, 2, std::nan(""), 3, 4}});
    CHECK(count(render_svg(plot), "<polyline") == 2);
  }
  TEST_CASE("a fixed y range labels its ends") {
    Plot plot = example_plot();
    plot.y_min = 0;
    plot.y_max = 1;
    plot.bands.clear();
    const std::string svg = render_svg(plot);
    CHECK(svg.find(">0.0</text>") != std::string::npos);
    CHECK(svg.find(">1.0</text>") != std::string::npos);
  }
  TEST_CASE("a series whose x and y lengths differ is refused, naming it") {
    Plot plot;
    plot.lines.push_back({"short", "black", {0, 1, 2}, {1, 2}});
    CHECK_THROWS_WITH_AS(render_svg(plot), doctest::Contains("'short'"), std::invalid_argument);
  }
  TEST_CASE("the SVG is well-formed XML (checked by python3's xml.dom.minidom)" *
            doctest::skip(python3_missing("xml.dom.minidom"))) {
    const auto dir = fresh_dir("ng_test_plot");
    const auto path = dir / "plot.svg";
    Plot plot = example_plot();
    plot.lines.push_back({"gap", "black", {0, 100, 200}, {0.2, std::nan(""), 0.3}, true});
    write_file_atomically(path.string(), render_svg(plot));
    const std::string command =
        "python3 -c 'import sys, xml.dom.minidom; d = xml.dom.minidom.parse(sys.argv[1]); "
        "sys.exit(0 if d.documentElement.tagName == \"svg\" else 1)' " +
        path.string();
    CHECK(std::system(command.c_str()) == 0);
    std::filesystem::remove_all(dir);
  }
  TEST_CASE("write_svg creates the folder and writes the rendered plot there, returning its path") {
    const auto dir = fresh_dir("ng_test_write_svg") / "nested";
    const Plot plot = example_plot();
    const std::string path = write_svg(dir.string(), "figure.svg", plot);
    CHECK(path == (dir / "figure.svg").string());
    std::ifstream in(path);
    std::stringstream written;
    written << in.rdbuf();
    CHECK(written.str() == render_svg(plot));
    std::filesystem::remove_all(dir.parent_path());
  }
}

TEST_SUITE("svg_plot log axes and markers") {
  // The vertices of the first <polyline> of an SVG, as (x, y) pixel pairs.
  std::vector<std::pair<double, double>> first_polyline(const std::string& svg) {
    const std::size_t start = svg.find("points=\"", svg.find("<polyline")) + 8;
    std::stringstream points(svg.substr(start, svg.find('"', start) - start));
    std::vector<std::pair<double, double>> xy;
    double x, y;
    char comma;
    while (points >> x >> comma >> y) xy.emplace_back(x, y);
    return xy;
  }

  TEST_CASE("log ticks are the powers of ten around the range, with 2 and 5 when it spans under three decades") {
    CHECK(log_ticks(16, 256) == std::vector<double>{10, 20, 50, 100, 200, 500});
    CHECK(log_ticks(4, 100) == std::vector<double>{2, 5, 10, 20, 50, 100});
    CHECK(log_ticks(3e-5, 0.2) == std::vector<double>{1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1});
    const std::vector<double> one = log_ticks(100, 100);
    CHECK(one.front() < 100);
    CHECK(one.back() > 100);
  }
  TEST_CASE("log ticks refuse a range that is not positive") {
    CHECK_THROWS_AS(log_ticks(0, 10), std::invalid_argument);
    CHECK_THROWS_AS(log_ticks(-1, 10), std::invalid_argument);
    CHECK_THROWS_AS(log_ticks(10, 1), std::invalid_argument);
  }
  TEST_CASE("log tick labels are short") {
    CHECK(format_log_tick(0.001) == "0.001");
    CHECK(format_log_tick(20) == "20");
    CHECK(format_log_tick(1e6) == "1e+06");
  }
  TEST_CASE("on log-log axes a power law is a straight line: equal ratios land at equal distances") {
    Plot plot;
    plot.x_log = plot.y_log = true;
    plot.lines.push_back({"y = x^3", "black", {1, 10, 100}, {1, 1e3, 1e6}});
    const auto xy = first_polyline(render_svg(plot));
    REQUIRE(xy.size() == 3);
    CHECK(xy[1].first - xy[0].first == doctest::Approx(xy[2].first - xy[1].first).epsilon(1e-3));
    CHECK(xy[1].second - xy[0].second == doctest::Approx(xy[2].second - xy[1].second).epsilon(1e-3));
    CHECK(xy[1].second < xy[0].second);  // growing y goes up the page
  }
  TEST_CASE("a log axis labels its decades, and a value <= 0 breaks the line") {
    Plot plot;
    plot.y_log = true;
    plot.lines.push_back({"time", "black", {1, 2, 3, 4, 5}, {0.01, 0.1, 0, 1, 10}});
    const std::string svg = render_svg(plot);
    CHECK(svg.find(">0.01</text>") != std::string::npos);
    CHECK(svg.find(">10</text>") != std::string::npos);
    CHECK(count(svg, "<polyline") == 2);
  }
  TEST_CASE("a fixed end of a log axis must be positive") {
    Plot plot;
    plot.y_log = true;
    plot.y_min = 0;
    plot.lines.push_back({"time", "black", {1, 2}, {1, 10}});
    CHECK_THROWS_WITH_AS(render_svg(plot), doctest::Contains("log axis"), std::invalid_argument);
  }
  TEST_CASE("a line with markers gets a dot on each finite point and one in the legend") {
    Plot plot;
    Line line{"measured", "#1f77b4", {1, 2, 3, 4}, {1, std::nan(""), 3, 4}};
    line.markers = true;
    plot.lines.push_back(line);
    plot.lines.push_back({"reference", "gray", {1, 4}, {1, 4}, true});
    CHECK(count(render_svg(plot), "<circle") == 3 + 1);
  }
}

TEST_SUITE("atomic_file") {
  TEST_CASE("an atomic write replaces the file whole and leaves no temp file") {
    const auto dir = fresh_dir("ng_test_atomic");
    const auto path = dir / "metrics.csv";
    write_file_atomically(path.string(), "first\n");
    write_file_atomically(path.string(), "a,b\n1,2\n");
    CHECK(read_text(path) == "a,b\n1,2\n");
    CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
    std::filesystem::remove_all(dir);
  }
  TEST_CASE("an atomic write into a missing folder fails naming the file") {
    CHECK_THROWS_WITH_AS(write_file_atomically("/nonexistent_ng_dir/x.csv", "x"),
                         doctest::Contains("/nonexistent_ng_dir/x.csv"), std::runtime_error);
  }
}

TEST_SUITE("args") {
  ArgParser make_parser() {
    ArgParser p("prog", "a test program");
    p.option("steps", "N", "training steps", "100");
    p.option("lr", "A[,B...]", "learning rates", "0.1");
    p.option("bn", "on|off|both", "which nets", "both");
    return p;
  }
  TEST_CASE("options take values as '--name value' or '--name=value' and keep defaults otherwise") {
    ArgParser p = make_parser();
    const char* argv[] = {"prog", "--steps", "250", "--lr=0.5,5,20"};
    REQUIRE(p.parse(4, argv));
    CHECK(p.get_int("steps", 1, 1000) == 250);
    CHECK(p.get_positive_list("lr") == std::vector<double>{0.5, 5, 20});
    CHECK(p.get_choice("bn", {"on", "off", "both"}) == "both");
    CHECK_FALSE(p.given("bn"));
  }
  TEST_CASE("bad options are usage errors naming the option") {
    ArgParser p = make_parser();
    const char* unknown[] = {"prog", "--stepz", "3"};
    CHECK_THROWS_WITH_AS(p.parse(3, unknown), doctest::Contains("--stepz"), UsageError);
    const char* missing[] = {"prog", "--steps"};
    CHECK_THROWS_WITH_AS(p.parse(2, missing), doctest::Contains("--steps"), UsageError);

    const char* bad_values[] = {"prog", "--steps", "12x", "--lr", "0.5,-1", "--bn", "maybe"};
    REQUIRE(p.parse(7, bad_values));
    CHECK_THROWS_WITH_AS(p.get_int("steps", 1, 1000), doctest::Contains("--steps"), UsageError);
    CHECK_THROWS_WITH_AS(p.get_positive_list("lr"), doctest::Contains("--lr"), UsageError);
    CHECK_THROWS_WITH_AS(p.get_choice("bn", {"on", "off", "both"}), doctest::Contains("on|off|both"), UsageError);
  }
  TEST_CASE("an integer outside its range is a usage error") {
    ArgParser p = make_parser();
    const char* argv[] = {"prog", "--steps", "0"};
    REQUIRE(p.parse(3, argv));
    CHECK_THROWS_AS(p.get_int("steps", 1, 1000), UsageError);
  }
}

TEST_SUITE("progress line") {
  // Outside a terminal (here a temporary file, as in a CI log) a loop of any length prints about ten lines.
  TEST_CASE("without a terminal, one plain line per tenth of the work and none in between") {
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    {
      ProgressLine progress(file);
      CHECK_FALSE(progress.is_terminal());
      const int steps = 5000;
      for (int step = 1; step <= steps; ++step)
        progress.update("step " + std::to_string(step), static_cast<double>(step) / steps);
      progress.done("step 5000");  // the final state, already shown: not printed twice
      progress.update("second loop", 0.0);
      progress.done("finished");
    }
    std::rewind(file);
    std::vector<std::string> lines;
    char buffer[128];
    while (std::fgets(buffer, sizeof buffer, file)) lines.emplace_back(buffer);
    std::fclose(file);
    // Steps 1 (the first line), 500, 1000, ..., 5000 (each new tenth), then the second loop; no '\r'.
    REQUIRE(lines.size() == 13);
    CHECK(lines[0] == "step 1\n");
    CHECK(lines[1] == "step 500\n");
    CHECK(lines[10] == "step 5000\n");
    CHECK(lines[11] == "second loop\n");
    CHECK(lines[12] == "finished\n");
    for (const std::string& line : lines) CHECK(line.find('\r') == std::string::npos);
  }
}
