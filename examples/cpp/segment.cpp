// segment.cpp - run a TensorRT plan exported by unetrt on one PPM/PGM image and write the class mask as PGM.
//
//   segment MODEL.engine IMAGE.ppm MASK.pgm [--align N] [--mask-values 0,127,255] [--output NAME]
//           [--device N] [--host-code] [--verbose]
//
// Everything about the model is read from the plan: the input and output tensor names, their data
// types (FP32 or FP16 I/O), the channel count and the optimisation profiles (min/opt/max shapes).
// The image is scaled to [0, 1] (8-bit samples / 255, 16-bit samples / maxval), laid out as 1xCxHxW,
// run once with setInputShape / setTensorAddress / enqueueV3 on a CUDA stream, and the logits are
// reduced to a class mask (argmax over classes; one class: logit > 0, i.e. sigmoid > 0.5) written as
// an 8-bit PGM whose grey levels are the mask values (default: evenly spaced, 255 * k / (K - 1) rounded
// down, e.g. 0, 127, 255 as milesial's masks).
//
// Needs TensorRT >= 10 (library nvinfer) or TensorRT-RTX (library tensorrt_rtx) and the CUDA runtime.

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if !defined(TRT_MAJOR_RTX) && defined(NV_TENSORRT_MAJOR) && NV_TENSORRT_MAJOR < 10
#error "segment.cpp needs TensorRT 10 or newer (or TensorRT-RTX): it uses the name-based I/O API and enqueueV3"
#endif

// Throws std::runtime_error naming the failed call, its file and line, and CUDA's error text.
#define CUDA_CHECK(call) checkCuda((call), #call, __FILE__, __LINE__)

namespace
{

void checkCuda(cudaError_t status, char const* expr, char const* file, int line)
{
    if (status != cudaSuccess)
    {
        std::ostringstream msg;
        msg << file << ":" << line << ": " << expr << " failed: " << cudaGetErrorName(status) << " ("
            << cudaGetErrorString(status) << ")";
        throw std::runtime_error(msg.str());
    }
}

// ---------------------------------------------------------------------------------------------
// RAII wrappers
// ---------------------------------------------------------------------------------------------

class Logger final : public nvinfer1::ILogger
{
public:
    explicit Logger(Severity threshold) : mThreshold(threshold) {}

    void log(Severity severity, char const* msg) noexcept override
    {
        if (severity > mThreshold)
        {
            return;
        }
        char const* tag = "INFO";
        switch (severity)
        {
        case Severity::kINTERNAL_ERROR: tag = "INTERNAL ERROR"; break;
        case Severity::kERROR: tag = "ERROR"; break;
        case Severity::kWARNING: tag = "WARNING"; break;
        case Severity::kINFO: tag = "INFO"; break;
        case Severity::kVERBOSE: tag = "VERBOSE"; break;
        }
        std::fprintf(stderr, "[TensorRT] %s: %s\n", tag, msg);
    }

private:
    Severity mThreshold;
};

// TensorRT >= 10 objects are released with delete (destroy() is gone).
template <typename T>
using TrtPtr = std::unique_ptr<T>;

class CudaStream
{
public:
    CudaStream() { CUDA_CHECK(cudaStreamCreateWithFlags(&mStream, cudaStreamNonBlocking)); }
    ~CudaStream()
    {
        if (mStream != nullptr)
        {
            cudaStreamDestroy(mStream); // no throwing from a destructor; nothing useful to do on failure
        }
    }
    CudaStream(CudaStream const&) = delete;
    CudaStream& operator=(CudaStream const&) = delete;

    cudaStream_t get() const noexcept { return mStream; }

private:
    cudaStream_t mStream{nullptr};
};

class DeviceBuffer
{
public:
    explicit DeviceBuffer(std::size_t bytes) : mBytes(bytes)
    {
        // At least one byte: TensorRT wants a non-null address even for an empty tensor.
        CUDA_CHECK(cudaMalloc(&mPtr, std::max<std::size_t>(bytes, 1)));
    }
    ~DeviceBuffer()
    {
        if (mPtr != nullptr)
        {
            cudaFree(mPtr);
        }
    }
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : mPtr(std::exchange(other.mPtr, nullptr)), mBytes(std::exchange(other.mBytes, 0))
    {
    }
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer&&) = delete;

    void* get() const noexcept { return mPtr; }
    std::size_t bytes() const noexcept { return mBytes; }

private:
    void* mPtr{nullptr};
    std::size_t mBytes{0};
};

// ---------------------------------------------------------------------------------------------
// Small helpers: dims, data types, FP16 conversion
// ---------------------------------------------------------------------------------------------

std::string dimsToString(nvinfer1::Dims const& dims)
{
    if (dims.nbDims < 0)
    {
        return "(invalid)";
    }
    std::string out;
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        out += (i ? "x" : "") + (dims.d[i] < 0 ? std::string("?") : std::to_string(dims.d[i]));
    }
    return out.empty() ? "scalar" : out;
}

std::size_t volume(nvinfer1::Dims const& dims)
{
    std::size_t n = 1;
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        n *= static_cast<std::size_t>(dims.d[i]);
    }
    return n;
}

char const* dataTypeName(nvinfer1::DataType type)
{
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT: return "float32";
    case nvinfer1::DataType::kHALF: return "float16";
    case nvinfer1::DataType::kBF16: return "bfloat16";
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kUINT8: return "uint8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kINT64: return "int64";
    case nvinfer1::DataType::kBOOL: return "bool";
    default: return "other";
    }
}

// Bytes per element of a tensor (any other output is still given a buffer, then ignored).
std::size_t elementSize(nvinfer1::DataType type, char const* tensor)
{
    switch (type)
    {
    case nvinfer1::DataType::kINT64: return 8;
    case nvinfer1::DataType::kFLOAT:
    case nvinfer1::DataType::kINT32: return 4;
    case nvinfer1::DataType::kHALF:
    case nvinfer1::DataType::kBF16: return 2;
    case nvinfer1::DataType::kINT8:
    case nvinfer1::DataType::kUINT8:
    case nvinfer1::DataType::kBOOL:
    case nvinfer1::DataType::kFP8: return 1;
    default:
        throw std::runtime_error(std::string("tensor '") + tensor + "' has a sub-byte or unknown data type");
    }
}

// The image input and the segmented output are exchanged as float32 or float16.
void requireFloatIo(nvinfer1::DataType type, char const* tensor)
{
    if (type != nvinfer1::DataType::kFLOAT && type != nvinfer1::DataType::kHALF)
    {
        throw std::runtime_error(std::string("tensor '") + tensor + "' has data type " + dataTypeName(type)
            + "; this example exchanges float32 or float16 tensors only (unet-export writes one of them, "
              "float16 with --fp16-io)");
    }
}

// IEEE 754 binary32 -> binary16, round to nearest even (what __float2half_rn does).
uint16_t floatToHalf(float value)
{
    uint32_t x = 0;
    std::memcpy(&x, &value, sizeof x);
    uint32_t const sign = (x >> 16) & 0x8000u;
    uint32_t const absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) // Inf or NaN
    {
        return static_cast<uint16_t>(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0u));
    }
    if (absx >= 0x477FF000u) // rounds to >= 65520: overflow to Inf
    {
        return static_cast<uint16_t>(sign | 0x7C00u);
    }
    if (absx < 0x38800000u) // below the smallest normal half (2^-14): subnormal or zero
    {
        if (absx < 0x33000000u) // below half the smallest subnormal (2^-25): zero
        {
            return static_cast<uint16_t>(sign);
        }
        uint32_t const exponent = absx >> 23;
        uint32_t const mantissa = (absx & 0x7FFFFFu) | 0x800000u;
        uint32_t const shift = 126u - exponent; // 14..24 (2^-24 = 0x33800000 -> shift 24)
        uint32_t half = mantissa >> shift;
        uint32_t const rest = mantissa & ((1u << shift) - 1u);
        uint32_t const halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (half & 1u)))
        {
            ++half;
        }
        return static_cast<uint16_t>(sign | half);
    }
    uint32_t half = ((absx - 0x38000000u) >> 13); // rebias exponent 127 -> 15
    uint32_t const rest = absx & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    {
        ++half; // may carry into the exponent, which is still correct
    }
    return static_cast<uint16_t>(sign | half);
}

float halfToFloat(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits = 0;
    if (exponent == 0x1Fu)
    {
        bits = sign | 0x7F800000u | (mantissa << 13);
    }
    else if (exponent != 0)
    {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    else if (mantissa != 0) // subnormal: normalise
    {
        exponent = 113;
        while ((mantissa & 0x400u) == 0)
        {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
    }
    else
    {
        bits = sign;
    }
    float out = 0.0F;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Binary PNM (P5 grey / P6 RGB) reading and PGM writing
// ---------------------------------------------------------------------------------------------

struct Image
{
    int32_t width{0};
    int32_t height{0};
    int32_t channels{0}; // 1 (P5) or 3 (P6)
    int32_t maxval{255};
    std::vector<uint16_t> samples; // HxWxC, row-major
};

void skipSpaceAndComments(std::istream& in)
{
    for (int c = in.peek(); c != std::char_traits<char>::eof(); c = in.peek())
    {
        if (std::isspace(c))
        {
            in.get();
        }
        else if (c == '#')
        {
            in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        }
        else
        {
            break;
        }
    }
}

int32_t readHeaderNumber(std::istream& in, std::string const& path, char const* what)
{
    skipSpaceAndComments(in);
    int64_t value = 0;
    bool any = false;
    for (int c = in.peek(); c != std::char_traits<char>::eof() && std::isdigit(c); c = in.peek())
    {
        value = value * 10 + (in.get() - '0');
        any = true;
        if (value > std::numeric_limits<int32_t>::max())
        {
            throw std::runtime_error(path + ": PNM " + what + " is too large");
        }
    }
    if (!any)
    {
        throw std::runtime_error(path + ": malformed PNM header (expected the " + what + ")");
    }
    return static_cast<int32_t>(value);
}

Image readPnm(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw std::runtime_error("cannot open image " + path);
    }
    char magic[2] = {0, 0};
    in.read(magic, 2);
    if (!in || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6'))
    {
        throw std::runtime_error(path + ": not a binary PGM/PPM (magic P5 or P6); convert it, e.g. "
                                        "`convert image.png image.ppm` (ImageMagick)");
    }
    Image img;
    img.channels = magic[1] == '6' ? 3 : 1;
    img.width = readHeaderNumber(in, path, "width");
    img.height = readHeaderNumber(in, path, "height");
    img.maxval = readHeaderNumber(in, path, "maxval");
    if (img.width < 1 || img.height < 1 || img.width > (1 << 16) || img.height > (1 << 16))
    {
        throw std::runtime_error(path + ": unsupported image size " + std::to_string(img.width) + "x"
            + std::to_string(img.height) + " (1..65536 per side)");
    }
    if (img.maxval < 1 || img.maxval > 65535)
    {
        throw std::runtime_error(path + ": PNM maxval " + std::to_string(img.maxval) + " outside 1..65535");
    }
    if (!std::isspace(in.get())) // exactly one whitespace character separates the header from the raster
    {
        throw std::runtime_error(path + ": malformed PNM header (no whitespace after maxval)");
    }
    std::size_t const count = static_cast<std::size_t>(img.width) * img.height * img.channels;
    std::size_t const bytesPerSample = img.maxval > 255 ? 2 : 1;
    std::vector<unsigned char> raw(count * bytesPerSample);
    in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    if (static_cast<std::size_t>(in.gcount()) != raw.size())
    {
        throw std::runtime_error(path + ": truncated raster (" + std::to_string(in.gcount()) + " of "
            + std::to_string(raw.size()) + " bytes)");
    }
    img.samples.resize(count);
    for (std::size_t i = 0; i < count; ++i)
    {
        img.samples[i] = bytesPerSample == 1 ? raw[i] : static_cast<uint16_t>((raw[2 * i] << 8) | raw[2 * i + 1]);
    }
    return img;
}

void writePgm(std::string const& path, int32_t width, int32_t height, std::vector<uint8_t> const& pixels)
{
    std::ofstream out(path, std::ios::binary);
    if (!out)
    {
        throw std::runtime_error("cannot write " + path);
    }
    out << "P5\n" << width << " " << height << "\n255\n";
    out.write(reinterpret_cast<char const*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
    if (!out.flush())
    {
        throw std::runtime_error("failed writing " + path);
    }
}

std::vector<char> readFile(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw std::runtime_error("cannot open plan file " + path);
    }
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.empty())
    {
        throw std::runtime_error(path + " is empty");
    }
    return data;
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

struct Options
{
    std::string plan;
    std::string image;
    std::string mask;
    int32_t align{0}; // 0: no padding
    std::vector<int32_t> maskValues;
    std::string outputName;
    int32_t device{0};
    bool hostCode{false};
    bool verbose{false};
};

void usage(std::ostream& out)
{
    out << "usage: segment MODEL.engine IMAGE.(ppm|pgm) MASK.pgm [options]\n"
           "  --align N              pad H and W (bottom/right, edge replicate) to multiples of N and at least\n"
           "                         the profile's minimum; the mask is cropped back to the image size\n"
           "  --mask-values A,B,...  grey level of each class (default: evenly spaced over 0..255)\n"
           "  --output NAME          output tensor to segment (default: the first output)\n"
           "  --device N             CUDA device (default 0)\n"
           "  --host-code            allow host code in the plan (version-compatible plans)\n"
           "  --verbose              TensorRT info messages\n";
}

int32_t parseInt(std::string const& text, char const* what)
{
    std::size_t used = 0;
    long value = 0;
    try
    {
        value = std::stol(text, &used);
    }
    catch (std::exception const&)
    {
        used = 0;
    }
    if (used != text.size() || text.empty() || value < std::numeric_limits<int32_t>::min()
        || value > std::numeric_limits<int32_t>::max())
    {
        throw std::invalid_argument(std::string("bad ") + what + " '" + text + "'");
    }
    return static_cast<int32_t>(value);
}

Options parseArgs(int argc, char** argv)
{
    Options opt;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i)
    {
        std::string const arg = argv[i];
        auto next = [&](char const* flag) -> std::string {
            if (i + 1 >= argc)
            {
                throw std::invalid_argument(std::string(flag) + " needs a value");
            }
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help")
        {
            usage(std::cout);
            std::exit(0);
        }
        else if (arg == "--align")
        {
            opt.align = parseInt(next("--align"), "--align");
            if (opt.align < 1)
            {
                throw std::invalid_argument("--align must be >= 1");
            }
        }
        else if (arg == "--mask-values")
        {
            std::stringstream list(next("--mask-values"));
            for (std::string item; std::getline(list, item, ',');)
            {
                int32_t const v = parseInt(item, "mask value");
                if (v < 0 || v > 255)
                {
                    throw std::invalid_argument("mask values must be in 0..255 (PGM grey levels)");
                }
                opt.maskValues.push_back(v);
            }
        }
        else if (arg == "--output")
        {
            opt.outputName = next("--output");
        }
        else if (arg == "--device")
        {
            opt.device = parseInt(next("--device"), "--device");
        }
        else if (arg == "--host-code")
        {
            opt.hostCode = true;
        }
        else if (arg == "--verbose")
        {
            opt.verbose = true;
        }
        else if (arg.size() > 1 && arg[0] == '-')
        {
            throw std::invalid_argument("unknown option " + arg);
        }
        else
        {
            positional.push_back(arg);
        }
    }
    if (positional.size() != 3)
    {
        throw std::invalid_argument("expected MODEL.engine IMAGE MASK.pgm");
    }
    opt.plan = positional[0];
    opt.image = positional[1];
    opt.mask = positional[2];
    return opt;
}

// ---------------------------------------------------------------------------------------------
// Model I/O description
// ---------------------------------------------------------------------------------------------

struct TensorInfo
{
    std::string name;
    bool isInput{false};
    nvinfer1::DataType type{nvinfer1::DataType::kFLOAT};
    nvinfer1::Dims shape{}; // -1 for dynamic dimensions
};

std::vector<TensorInfo> describeTensors(nvinfer1::ICudaEngine const& engine)
{
    std::vector<TensorInfo> tensors;
    for (int32_t i = 0; i < engine.getNbIOTensors(); ++i)
    {
        TensorInfo info;
        char const* name = engine.getIOTensorName(i);
        info.name = name;
        info.isInput = engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
        info.type = engine.getTensorDataType(name);
        info.shape = engine.getTensorShape(name);
        tensors.push_back(info);
    }
    return tensors;
}

struct Profile
{
    nvinfer1::Dims min{};
    nvinfer1::Dims opt{};
    nvinfer1::Dims max{};
};

Profile profileOf(nvinfer1::ICudaEngine const& engine, TensorInfo const& input, int32_t index)
{
    Profile p;
    p.min = engine.getProfileShape(input.name.c_str(), index, nvinfer1::OptProfileSelector::kMIN);
    p.opt = engine.getProfileShape(input.name.c_str(), index, nvinfer1::OptProfileSelector::kOPT);
    p.max = engine.getProfileShape(input.name.c_str(), index, nvinfer1::OptProfileSelector::kMAX);
    if (p.min.nbDims != input.shape.nbDims || p.max.nbDims != input.shape.nbDims) // static input: no range
    {
        p.min = p.opt = p.max = input.shape;
    }
    return p;
}

bool admits(Profile const& p, nvinfer1::Dims const& shape)
{
    if (p.min.nbDims != shape.nbDims || p.max.nbDims != shape.nbDims)
    {
        return false;
    }
    for (int32_t i = 0; i < shape.nbDims; ++i)
    {
        if (shape.d[i] < p.min.d[i] || shape.d[i] > p.max.d[i])
        {
            return false;
        }
    }
    return true;
}

int64_t roundUp(int64_t value, int64_t multiple)
{
    return (value + multiple - 1) / multiple * multiple;
}

// 1xCxHxW float32 planes in [0, 1], the image padded bottom/right by edge replication to padH x padW.
std::vector<float> toInput(Image const& img, int32_t channels, int64_t padH, int64_t padW)
{
    if (img.channels != channels && !(img.channels == 1 && channels == 3) && !(img.channels == 3 && channels == 1))
    {
        throw std::runtime_error("the model takes " + std::to_string(channels) + " channel(s); the image has "
            + std::to_string(img.channels));
    }
    bool const eightBit = img.maxval <= 255;
    float const scale = eightBit ? 1.0F / 255.0F : 1.0F / static_cast<float>(img.maxval);
    std::size_t const plane = static_cast<std::size_t>(padH) * static_cast<std::size_t>(padW);
    std::vector<float> out(plane * static_cast<std::size_t>(channels));
    for (int64_t y = 0; y < padH; ++y)
    {
        int64_t const sy = std::min<int64_t>(y, img.height - 1);
        for (int64_t x = 0; x < padW; ++x)
        {
            int64_t const sx = std::min<int64_t>(x, img.width - 1);
            uint16_t const* px = &img.samples[(static_cast<std::size_t>(sy) * img.width + sx) * img.channels];
            std::size_t const at = static_cast<std::size_t>(y) * padW + x;
            if (img.channels == channels)
            {
                for (int32_t c = 0; c < channels; ++c)
                {
                    out[c * plane + at] = px[c] * scale;
                }
            }
            else if (channels == 3) // grey -> RGB
            {
                out[at] = out[plane + at] = out[2 * plane + at] = px[0] * scale;
            }
            else // RGB -> grey, ITU-R 601-2 luma (PIL's convert("L") for 8-bit)
            {
                float luma = 0.0F;
                if (eightBit)
                {
                    uint32_t const v = (px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16;
                    luma = static_cast<float>(v);
                }
                else
                {
                    luma = 0.299F * px[0] + 0.587F * px[1] + 0.114F * px[2];
                }
                out[at] = luma * scale;
            }
        }
    }
    return out;
}

int run(Options const& opt)
{
    Image const img = readPnm(opt.image);
    std::vector<char> const plan = readFile(opt.plan);

    CUDA_CHECK(cudaSetDevice(opt.device));
    Logger logger(opt.verbose ? nvinfer1::ILogger::Severity::kINFO : nvinfer1::ILogger::Severity::kWARNING);
    // Declaration order = reverse destruction order: context, then engine, then runtime.
    TrtPtr<nvinfer1::IRuntime> runtime{nvinfer1::createInferRuntime(logger)};
    if (!runtime)
    {
        throw std::runtime_error("createInferRuntime failed");
    }
    if (opt.hostCode)
    {
        runtime->setEngineHostCodeAllowed(true);
    }
    TrtPtr<nvinfer1::ICudaEngine> engine{runtime->deserializeCudaEngine(plan.data(), plan.size())};
    if (!engine)
    {
        throw std::runtime_error("cannot deserialize " + opt.plan
            + " (built by another TensorRT version or flavour, for another GPU, or not a plan; see the "
              "TensorRT messages above)");
    }

    // --- I/O tensors, data types and profiles, all from the plan ---------------------------------
    std::vector<TensorInfo> const tensors = describeTensors(*engine);
    TensorInfo const* input = nullptr;
    TensorInfo const* output = nullptr;
    std::cout << opt.plan << ": " << tensors.size() << " I/O tensor(s), " << engine->getNbOptimizationProfiles()
              << " profile(s)\n";
    for (TensorInfo const& t : tensors)
    {
        std::cout << "  " << (t.isInput ? "input  " : "output ") << t.name << " " << dataTypeName(t.type) << " "
                  << dimsToString(t.shape) << "\n";
        if (t.isInput)
        {
            if (input != nullptr)
            {
                throw std::runtime_error("the plan has several inputs; this example feeds exactly one image input");
            }
            input = &t;
        }
        else if (output == nullptr && (opt.outputName.empty() || opt.outputName == t.name))
        {
            output = &t;
        }
    }
    if (input == nullptr || output == nullptr)
    {
        throw std::runtime_error(input == nullptr ? "the plan has no input tensor"
                                                  : "no output tensor named '" + opt.outputName + "'");
    }
    if (input->shape.nbDims != 4)
    {
        throw std::runtime_error("input '" + input->name + "' has rank " + std::to_string(input->shape.nbDims)
            + "; expected NCHW");
    }

    // Channels: the plan's, else (dynamic C) the image's.
    int32_t channels = input->shape.d[1] > 0 ? static_cast<int32_t>(input->shape.d[1]) : img.channels;
    int32_t const nbProfiles = std::max<int32_t>(engine->getNbOptimizationProfiles(), 1);
    std::vector<Profile> profiles;
    for (int32_t p = 0; p < nbProfiles; ++p)
    {
        profiles.push_back(profileOf(*engine, *input, p));
        std::cout << "  profile " << p << ": min " << dimsToString(profiles.back().min) << ", opt "
                  << dimsToString(profiles.back().opt) << ", max " << dimsToString(profiles.back().max) << "\n";
    }

    // --- Size: the image's, or padded to --align (and the profile minimum); checked against profiles
    int32_t chosen = -1;
    nvinfer1::Dims shape{};
    shape.nbDims = 4;
    for (int32_t p = 0; p < nbProfiles && chosen < 0; ++p)
    {
        int64_t h = img.height;
        int64_t w = img.width;
        if (opt.align > 0)
        {
            h = roundUp(std::max<int64_t>(h, profiles[p].min.d[2]), opt.align);
            w = roundUp(std::max<int64_t>(w, profiles[p].min.d[3]), opt.align);
        }
        nvinfer1::Dims candidate{};
        candidate.nbDims = 4;
        candidate.d[0] = 1;
        candidate.d[1] = channels;
        candidate.d[2] = h;
        candidate.d[3] = w;
        if (admits(profiles[p], candidate))
        {
            chosen = p;
            shape = candidate;
        }
    }
    if (chosen < 0)
    {
        std::ostringstream msg;
        msg << "image " << img.width << "x" << img.height << " (1x" << channels << "x" << img.height << "x"
            << img.width << ") fits no optimisation profile of the plan; "
            << (opt.align > 0 ? "resize or tile the image, or rebuild the engine with a larger profile"
                              : "pass --align N (pads to multiples of N and the profile minimum), resize the image, "
                                "or rebuild the engine with another profile");
        throw std::runtime_error(msg.str());
    }
    std::cout << "image " << opt.image << ": " << img.width << "x" << img.height << ", " << img.channels
              << " channel(s); input " << dimsToString(shape) << " on profile " << chosen << "\n";

    // --- Context, shapes, buffers ---------------------------------------------------------------
    CudaStream stream;
    TrtPtr<nvinfer1::IExecutionContext> context{engine->createExecutionContext()};
    if (!context)
    {
        throw std::runtime_error("createExecutionContext failed (out of GPU memory?)");
    }
    if (chosen != 0 && !context->setOptimizationProfileAsync(chosen, stream.get()))
    {
        throw std::runtime_error("setOptimizationProfileAsync(" + std::to_string(chosen) + ") failed");
    }
    if (!context->setInputShape(input->name.c_str(), shape))
    {
        throw std::runtime_error("setInputShape(" + input->name + ", " + dimsToString(shape) + ") failed");
    }

    std::vector<DeviceBuffer> buffers;
    buffers.reserve(tensors.size());
    std::size_t outputIndex = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i)
    {
        TensorInfo const& t = tensors[i];
        nvinfer1::Dims const dims = context->getTensorShape(t.name.c_str());
        bool resolved = dims.nbDims >= 0;
        for (int32_t k = 0; k < dims.nbDims; ++k)
        {
            resolved = resolved && dims.d[k] >= 0;
        }
        if (!resolved)
        {
            throw std::runtime_error("cannot resolve the shape of '" + t.name + "' (" + dimsToString(dims) + ")");
        }
        if (engine->getTensorFormat(t.name.c_str(), chosen) != nvinfer1::TensorFormat::kLINEAR)
        {
            throw std::runtime_error("tensor '" + t.name + "' is not in linear (NCHW) format");
        }
        if (&t == input || &t == output)
        {
            requireFloatIo(t.type, t.name.c_str());
        }
        buffers.emplace_back(volume(dims) * elementSize(t.type, t.name.c_str()));
        if (!context->setTensorAddress(t.name.c_str(), buffers.back().get()))
        {
            throw std::runtime_error("setTensorAddress(" + t.name + ") failed");
        }
        if (&t == output)
        {
            outputIndex = i;
        }
    }
    nvinfer1::Dims const outDims = context->getTensorShape(output->name.c_str());
    if (outDims.nbDims != 4 || outDims.d[0] != 1 || outDims.d[2] != shape.d[2] || outDims.d[3] != shape.d[3])
    {
        throw std::runtime_error("output '" + output->name + "' is " + dimsToString(outDims) + " for input "
            + dimsToString(shape) + "; this example expects 1xKxHxW logits of the input's size");
    }

    // --- Input upload, inference, download --------------------------------------------------------
    std::vector<float> const x = toInput(img, channels, shape.d[2], shape.d[3]);
    std::size_t inputIndex = static_cast<std::size_t>(input - tensors.data());
    std::vector<uint16_t> xHalf;
    void const* xHost = x.data();
    if (input->type == nvinfer1::DataType::kHALF)
    {
        xHalf.resize(x.size());
        std::transform(x.begin(), x.end(), xHalf.begin(), floatToHalf);
        xHost = xHalf.data();
    }
    DeviceBuffer const& xDev = buffers[inputIndex];
    DeviceBuffer const& yDev = buffers[outputIndex];
    std::vector<unsigned char> yHost(yDev.bytes());

    auto const start = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaMemcpyAsync(xDev.get(), xHost, xDev.bytes(), cudaMemcpyHostToDevice, stream.get()));
    if (!context->enqueueV3(stream.get()))
    {
        throw std::runtime_error("enqueueV3 failed (see the TensorRT messages above)");
    }
    CUDA_CHECK(cudaMemcpyAsync(yHost.data(), yDev.get(), yDev.bytes(), cudaMemcpyDeviceToHost, stream.get()));
    CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    double const ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

    // --- Argmax over classes, mask values, crop to the image -----------------------------------
    int64_t const classes = outDims.d[1];
    std::size_t const plane = static_cast<std::size_t>(outDims.d[2]) * static_cast<std::size_t>(outDims.d[3]);
    auto logit = [&](int64_t k, std::size_t at) -> float {
        std::size_t const idx = static_cast<std::size_t>(k) * plane + at;
        if (output->type == nvinfer1::DataType::kHALF)
        {
            uint16_t h = 0;
            std::memcpy(&h, yHost.data() + idx * 2, 2);
            return halfToFloat(h);
        }
        float f = 0.0F;
        std::memcpy(&f, yHost.data() + idx * 4, 4);
        return f;
    };
    std::size_t const levels = static_cast<std::size_t>(std::max<int64_t>(classes, 2));
    std::vector<int32_t> values = opt.maskValues;
    if (values.empty())
    {
        for (std::size_t i = 0; i < levels; ++i)
        {
            values.push_back(static_cast<int32_t>(255 * i / (levels - 1))); // 3 classes: 0, 127, 255
        }
    }
    if (values.size() != levels)
    {
        throw std::runtime_error("--mask-values has " + std::to_string(values.size()) + " value(s); the model has "
            + std::to_string(levels) + " class(es)" + (classes == 1 ? " (one logit: background, foreground)" : ""));
    }
    std::vector<uint8_t> mask(static_cast<std::size_t>(img.width) * img.height);
    std::vector<std::size_t> counts(levels, 0);
    for (int32_t y = 0; y < img.height; ++y)
    {
        for (int32_t xx = 0; xx < img.width; ++xx)
        {
            std::size_t const at = static_cast<std::size_t>(y) * outDims.d[3] + xx;
            std::size_t best = 0;
            if (classes == 1)
            {
                best = logit(0, at) > 0.0F ? 1 : 0;
            }
            else
            {
                float top = logit(0, at);
                for (int64_t k = 1; k < classes; ++k)
                {
                    float const v = logit(k, at);
                    if (v > top) // first maximum wins, as torch.argmax
                    {
                        top = v;
                        best = static_cast<std::size_t>(k);
                    }
                }
            }
            ++counts[best];
            mask[static_cast<std::size_t>(y) * img.width + xx] = static_cast<uint8_t>(values[best]);
        }
    }
    writePgm(opt.mask, img.width, img.height, mask);

    std::cout << "inference " << ms << " ms (upload + enqueueV3 + download); mask " << opt.mask << ":";
    for (std::size_t k = 0; k < levels; ++k)
    {
        std::cout << " class " << k << " (grey " << values[k] << ") " << counts[k] << " px"
                  << (k + 1 < levels ? "," : "\n");
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try
    {
        return run(parseArgs(argc, argv));
    }
    catch (std::invalid_argument const& e)
    {
        std::cerr << "segment: " << e.what() << "\n";
        usage(std::cerr);
        return 2;
    }
    catch (std::exception const& e)
    {
        std::cerr << "segment: error: " << e.what() << "\n";
        return 1;
    }
}
