// clip.cpp (monatis/clip.cpp, ggml) image-tower throughput, timed the way bench/peers/ort_bench.py times ONNX Runtime:
// the model loaded once, synthetic preprocessed images (224x224 RGB float, already normalised), untimed warm-up steps,
// then the median of K timed steps, each one encoding a batch of N images with clip_image_batch_encode (normalised
// embeddings, as clip.cpp's examples ask for). Only the encode call is timed: no file decoding, no resizing.
//
//   clip_cpp_bench -m MODEL.gguf [-b N] [-t THREADS] [-n STEPS] [-w WARMUP] [--chunk C] [--dump FILE]
//
// --chunk C: a step encodes its N images as ceil(N / C) sequential clip_image_batch_encode calls of at most C images
// (clip.cpp sizes its compute buffers for small batches: one call of more images aborts, see README.md).
// --dump FILE: writes the first step's N x D embeddings to FILE and the N images to FILE.input (N x H x W x 3, the
// interleaved RGB layout clip_image_f32 holds), both raw float32, for a check against the reference model. Prints one JSON line.
//
// Build (bench/peers/setup.sh bench does it): g++ -std=c++17 -O3 -march=native ... -I$SRC -I$SRC/ggml/include
//   clip_cpp_bench.cpp $BUILD/libclip.a $BUILD/ggml/src/libggml.a -pthread
#include "clip.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void usage(const char * argv0, const char * why) {
    if (why) fprintf(stderr, "clip_cpp_bench: %s\n", why);
    fprintf(stderr, "usage: %s -m MODEL.gguf [-b BATCH=1] [-t THREADS=2] [-n STEPS=10] [-w WARMUP=2] [--chunk C=BATCH] [--dump FILE]\n",
            argv0);
    exit(2);
}

int int_arg(int & i, int argc, char ** argv) {
    if (i + 1 >= argc) usage(argv[0], "a flag lacks its value");
    char * end = nullptr;
    long v = strtol(argv[++i], &end, 10);
    if (*end != '\0') usage(argv[0], "a flag's value is not an integer");
    return (int)v;
}

} // namespace

int main(int argc, char ** argv) {
    const auto t_process = Clock::now();
    std::string model, dump;
    int batch = 1, threads = 2, steps = 10, warmup = 2, chunk = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-m" || a == "--model") {
            if (i + 1 >= argc) usage(argv[0], "-m lacks its value");
            model = argv[++i];
        } else if (a == "-b" || a == "--batch-size") batch = int_arg(i, argc, argv);
        else if (a == "-t" || a == "--threads") threads = int_arg(i, argc, argv);
        else if (a == "-n" || a == "--steps") steps = int_arg(i, argc, argv);
        else if (a == "-w" || a == "--warmup") warmup = int_arg(i, argc, argv);
        else if (a == "--chunk") chunk = int_arg(i, argc, argv);
        else if (a == "--dump") {
            if (i + 1 >= argc) usage(argv[0], "--dump lacks its value");
            dump = argv[++i];
        } else usage(argv[0], ("unknown argument " + a).c_str());
    }
    if (model.empty()) usage(argv[0], "-m MODEL.gguf is required");
    if (batch < 1 || threads < 1 || steps < 1 || warmup < 0 || chunk < 0)
        usage(argv[0], "batch, threads and steps must be at least 1, warmup and chunk at least 0");
    if (chunk == 0 || chunk > batch) chunk = batch;

    const auto t_load = Clock::now();
    clip_ctx * ctx = clip_model_load(model.c_str(), 0);
    if (!ctx) {
        fprintf(stderr, "clip_cpp_bench: cannot load %s\n", model.c_str());
        return 1;
    }
    const double load_s = seconds_since(t_load);
    const clip_vision_hparams * hp = clip_get_vision_hparams(ctx);
    const int size = hp->image_size, dim = hp->projection_dim;

    // synthetic preprocessed images: N(0, 1) values, as a normalised photo roughly is; image i from seed i
    std::vector<std::vector<float>> pixels(batch, std::vector<float>((size_t)3 * size * size));
    std::vector<clip_image_f32> images(batch);
    for (int i = 0; i < batch; i++) {
        std::mt19937 rng(1000 + i);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (float & v : pixels[i]) v = normal(rng);
        images[i] = clip_image_f32{size, size, pixels[i].data(), pixels[i].size()};
    }
    std::vector<float> out((size_t)batch * dim);

    auto step = [&]() {
        for (int start = 0; start < batch; start += chunk) {
            clip_image_f32_batch part{images.data() + start, (size_t)std::min(chunk, batch - start)};
            if (!clip_image_batch_encode(ctx, threads, &part, out.data() + (size_t)start * dim, true)) {
                fprintf(stderr, "clip_cpp_bench: clip_image_batch_encode failed\n");
                exit(1);
            }
        }
    };

    std::vector<double> times;
    double first_s = 0.0, first_embedding_s = 0.0;
    for (int i = 0; i < warmup + steps; i++) {
        const auto t0 = Clock::now();
        step();
        const double dt = seconds_since(t0);
        if (i == 0) {
            first_s = dt;
            first_embedding_s = seconds_since(t_process);
            for (float v : out)
                if (!std::isfinite(v)) {
                    fprintf(stderr, "clip_cpp_bench: a non-finite embedding value\n");
                    return 1;
                }
            if (!dump.empty()) {
                FILE * f = fopen(dump.c_str(), "wb");
                if (!f || fwrite(out.data(), sizeof(float), out.size(), f) != out.size() || fclose(f) != 0) {
                    fprintf(stderr, "clip_cpp_bench: cannot write %s\n", dump.c_str());
                    return 1;
                }
                const std::string input = dump + ".input";
                f = fopen(input.c_str(), "wb");
                bool ok = f != nullptr;
                for (const auto & p : pixels) ok = ok && fwrite(p.data(), sizeof(float), p.size(), f) == p.size();
                if (!ok || fclose(f) != 0) {
                    fprintf(stderr, "clip_cpp_bench: cannot write %s\n", input.c_str());
                    return 1;
                }
            }
        }
        if (i >= warmup) times.push_back(dt);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);

    printf("{\"peer\": \"clip.cpp\", \"model\": \"%s\", \"batch\": %d, \"chunk\": %d, \"threads\": %d, \"steps\": %d, "
           "\"warmup\": %d, \"images_per_s\": %.3f, \"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, "
           "\"load_s\": %.4f, \"first_step_s\": %.4f, \"process_to_first_embedding_s\": %.4f, \"step_s\": [",
           model.c_str(), batch, chunk, threads, steps, warmup, batch / median, median, sorted.front(), sorted.back(), load_s,
           first_s, first_embedding_s);
    for (size_t i = 0; i < times.size(); i++) printf("%s%.6f", i ? ", " : "", times[i]);
    printf("]}\n");
    clip_free(ctx);
    return 0;
}
