// Test mock, NOT TensorRT or CUDA: implements the mock TensorRT API of mock_include/NvInfer.h and the CUDA
// runtime calls segment.cpp makes (with the real cuda_runtime_api.h prototypes) on the CPU so that the tests
// can run examples/cpp/segment.cpp's host-side logic (PNM parsing, channel conversion, padding, profile
// checks, FP16 conversion, argmax, PGM writing, error paths, resource release) without a GPU.
//
// "Device" memory is host memory. A plan is a text blob:
//   MOCKPLAN dtype=float32|float16 channels=C classes=K min=16 max=1024[,64...] maxn=4 aux=0|1
// (one profile per value of max). The engine has an input "input" [-1,C,-1,-1], an output "logits"
// [-1,K,-1,-1] with logits[k] = input[k % C] (K == 1: input[0] - 0.5), and with aux=1 a second output
// "aux" of type int64, shape [-1,1]. The mock enforces what TensorRT enforces at these calls
// (profile bounds, all addresses set before enqueueV3, buffer sizes, release order) and prints
// a resource report to stderr when the process ends.
//
// MOCK_CUDA_FAIL=<function>[:<n>] makes the n-th call (default 1st) of that CUDA function fail.

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

struct CUstream_st
{
    int id;
};

namespace
{

struct Report
{
    long allocations = 0; // live cudaMalloc blocks
    long streams = 0;     // live streams
    long objects = 0;     // live runtime / engine / context objects
    long orderViolations = 0;
    long memcpyErrors = 0;
    long enqueues = 0;
    ~Report()
    {
        std::fprintf(stderr,
            "mock-runtime: allocations=%ld streams=%ld trt_objects=%ld order_violations=%ld memcpy_errors=%ld "
            "enqueues=%ld\n",
            allocations, streams, objects, orderViolations, memcpyErrors, enqueues);
    }
};
Report gReport;
std::map<void const*, size_t> gBlocks; // "device" allocations and their sizes
std::map<std::string, int> gCalls;

bool shouldFail(char const* function)
{
    int const call = ++gCalls[function];
    char const* spec = std::getenv("MOCK_CUDA_FAIL");
    if (spec == nullptr)
    {
        return false;
    }
    std::string const s = spec;
    std::string const name = s.substr(0, s.find(':'));
    int const nth = s.find(':') == std::string::npos ? 1 : std::atoi(s.c_str() + s.find(':') + 1);
    return name == function && call == nth;
}

bool isDeviceRange(void const* p, size_t bytes)
{
    auto const it = gBlocks.find(p);
    return it != gBlocks.end() && bytes <= it->second;
}

uint16_t toHalf(float v) // exact for the values used here is not required: nearest-even via float bits
{
    uint32_t x = 0;
    std::memcpy(&x, &v, 4);
    uint32_t const sign = (x >> 16) & 0x8000u;
    int32_t const exponent = static_cast<int32_t>((x >> 23) & 0xFFu) - 127 + 15;
    uint32_t mantissa = x & 0x7FFFFFu;
    if (exponent <= 0)
    {
        return static_cast<uint16_t>(sign); // the mock's values are 0 or >= 2^-14 away from 0
    }
    uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
    uint32_t const rest = mantissa & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    {
        ++half;
    }
    return static_cast<uint16_t>(sign | half);
}

float fromHalf(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t const exponent = (h >> 10) & 0x1Fu;
    uint32_t const mantissa = h & 0x3FFu;
    uint32_t bits = sign;
    if (exponent != 0)
    {
        bits |= ((exponent + 112u) << 23) | (mantissa << 13);
    }
    else if (mantissa != 0)
    {
        float const v = static_cast<float>(mantissa) / 16777216.0F; // 2^-24 units
        return (h & 0x8000u) ? -v : v;
    }
    float out = 0.0F;
    std::memcpy(&out, &bits, 4);
    return out;
}

nvinfer1::Dims dims(std::vector<int64_t> const& values)
{
    nvinfer1::Dims d{};
    d.nbDims = static_cast<int32_t>(values.size());
    for (size_t i = 0; i < values.size(); ++i)
    {
        d.d[i] = values[i];
    }
    return d;
}

struct PlanSpec
{
    nvinfer1::DataType type = nvinfer1::DataType::kFLOAT;
    int64_t channels = 3;
    int64_t classes = 3;
    int64_t minSize = 16;
    std::vector<int64_t> maxSizes{1024};
    int64_t maxBatch = 4;
    bool aux = false;
};

class MockEngine;

class MockContext final : public nvinfer1::IExecutionContext
{
public:
    MockContext(MockEngine& engine, nvinfer1::ILogger& logger);
    ~MockContext() noexcept override;
    bool setInputShape(char const* tensorName, nvinfer1::Dims const& d) noexcept override;
    nvinfer1::Dims getTensorShape(char const* tensorName) const noexcept override;
    bool setTensorAddress(char const* tensorName, void* data) noexcept override;
    bool setOptimizationProfileAsync(int32_t profileIndex, cudaStream_t stream) noexcept override;
    bool enqueueV3(cudaStream_t stream) noexcept override;

private:
    bool fail(std::string const& msg) noexcept
    {
        mLogger.log(nvinfer1::ILogger::Severity::kERROR, ("mock: " + msg).c_str());
        return false;
    }
    MockEngine& mEngine;
    nvinfer1::ILogger& mLogger;
    int32_t mProfile = 0;
    nvinfer1::Dims mInput{-1, {}};
    std::map<std::string, void*> mAddresses;
};

class MockEngine final : public nvinfer1::ICudaEngine
{
public:
    MockEngine(PlanSpec spec, nvinfer1::ILogger& logger, int& runtimeEngines)
        : spec(spec), mLogger(logger), mRuntimeEngines(runtimeEngines)
    {
        ++gReport.objects;
        ++mRuntimeEngines;
    }
    ~MockEngine() noexcept override
    {
        if (liveContexts != 0)
        {
            ++gReport.orderViolations; // TensorRT: destroy contexts before their engine
        }
        --gReport.objects;
        --mRuntimeEngines;
    }
    int32_t getNbIOTensors() const noexcept override { return spec.aux ? 3 : 2; }
    char const* getIOTensorName(int32_t index) const noexcept override
    {
        static char const* names[] = {"input", "logits", "aux"};
        return index >= 0 && index < getNbIOTensors() ? names[index] : nullptr;
    }
    nvinfer1::TensorIOMode getTensorIOMode(char const* name) const noexcept override
    {
        std::string const n = name;
        return n == "input" ? nvinfer1::TensorIOMode::kINPUT
            : (n == "logits" || (spec.aux && n == "aux")) ? nvinfer1::TensorIOMode::kOUTPUT
                                                         : nvinfer1::TensorIOMode::kNONE;
    }
    nvinfer1::DataType getTensorDataType(char const* name) const noexcept override
    {
        return std::string(name) == "aux" ? nvinfer1::DataType::kINT64 : spec.type;
    }
    nvinfer1::Dims getTensorShape(char const* name) const noexcept override
    {
        std::string const n = name;
        if (n == "input")
        {
            return dims({-1, spec.channels, -1, -1});
        }
        if (n == "logits")
        {
            return dims({-1, spec.classes, -1, -1});
        }
        return spec.aux && n == "aux" ? dims({-1, 1}) : dims({}); // real TensorRT: nbDims -1 for unknown names
    }
    nvinfer1::TensorFormat getTensorFormat(char const*, int32_t) const noexcept override
    {
        return nvinfer1::TensorFormat::kLINEAR;
    }
    int32_t getNbOptimizationProfiles() const noexcept override
    {
        return static_cast<int32_t>(spec.maxSizes.size());
    }
    nvinfer1::Dims getProfileShape(
        char const* name, int32_t profile, nvinfer1::OptProfileSelector select) const noexcept override
    {
        if (std::string(name) != "input" || profile < 0 || profile >= getNbOptimizationProfiles())
        {
            return nvinfer1::Dims{-1, {}};
        }
        int64_t const max = spec.maxSizes[static_cast<size_t>(profile)];
        switch (select)
        {
        case nvinfer1::OptProfileSelector::kMIN: return dims({1, spec.channels, spec.minSize, spec.minSize});
        case nvinfer1::OptProfileSelector::kOPT: return dims({1, spec.channels, max / 2, max / 2});
        case nvinfer1::OptProfileSelector::kMAX: return dims({spec.maxBatch, spec.channels, max, max});
        }
        return nvinfer1::Dims{-1, {}};
    }
    nvinfer1::IExecutionContext* createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy) noexcept override
    {
        return new MockContext(*this, mLogger);
    }

    PlanSpec const spec;
    int liveContexts = 0;

private:
    nvinfer1::ILogger& mLogger;
    int& mRuntimeEngines;
};

MockContext::MockContext(MockEngine& engine, nvinfer1::ILogger& logger) : mEngine(engine), mLogger(logger)
{
    ++gReport.objects;
    ++mEngine.liveContexts;
}

MockContext::~MockContext() noexcept
{
    --gReport.objects;
    --mEngine.liveContexts;
}

bool MockContext::setInputShape(char const* name, nvinfer1::Dims const& d) noexcept
{
    if (std::string(name) != "input" || d.nbDims != 4)
    {
        return fail("setInputShape: not the input or not rank 4");
    }
    nvinfer1::Dims const lo = mEngine.getProfileShape(name, mProfile, nvinfer1::OptProfileSelector::kMIN);
    nvinfer1::Dims const hi = mEngine.getProfileShape(name, mProfile, nvinfer1::OptProfileSelector::kMAX);
    for (int i = 0; i < 4; ++i)
    {
        if (d.d[i] < lo.d[i] || d.d[i] > hi.d[i])
        {
            return fail("setInputShape: outside profile " + std::to_string(mProfile));
        }
    }
    mInput = d;
    return true;
}

nvinfer1::Dims MockContext::getTensorShape(char const* name) const noexcept
{
    std::string const n = name;
    bool const known = mInput.nbDims == 4;
    if (n == "input")
    {
        return known ? mInput : dims({-1, mEngine.spec.channels, -1, -1});
    }
    if (n == "logits")
    {
        return known ? dims({mInput.d[0], mEngine.spec.classes, mInput.d[2], mInput.d[3]})
                     : dims({-1, mEngine.spec.classes, -1, -1});
    }
    if (n == "aux" && mEngine.spec.aux)
    {
        return dims({known ? mInput.d[0] : -1, 1});
    }
    return nvinfer1::Dims{-1, {}};
}

bool MockContext::setTensorAddress(char const* name, void* data) noexcept
{
    if (mEngine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kNONE || data == nullptr)
    {
        return fail(std::string("setTensorAddress: bad tensor ") + name);
    }
    mAddresses[name] = data;
    return true;
}

bool MockContext::setOptimizationProfileAsync(int32_t profileIndex, cudaStream_t stream) noexcept
{
    if (profileIndex < 0 || profileIndex >= mEngine.getNbOptimizationProfiles() || stream == nullptr)
    {
        return fail("setOptimizationProfileAsync: bad profile or stream");
    }
    mProfile = profileIndex;
    mInput = nvinfer1::Dims{-1, {}};
    std::printf("mock: profile %d selected\n", profileIndex);
    return true;
}

bool MockContext::enqueueV3(cudaStream_t stream) noexcept
{
    if (stream == nullptr)
    {
        return fail("enqueueV3: use a stream");
    }
    if (mInput.nbDims != 4)
    {
        return fail("enqueueV3: input shape not set");
    }
    for (int i = 0; i < mEngine.getNbIOTensors(); ++i)
    {
        char const* name = mEngine.getIOTensorName(i);
        nvinfer1::Dims const d = getTensorShape(name);
        size_t bytes = std::string(name) == "aux" ? 8 : (mEngine.spec.type == nvinfer1::DataType::kHALF ? 2 : 4);
        for (int k = 0; k < d.nbDims; ++k)
        {
            bytes *= static_cast<size_t>(d.d[k]);
        }
        if (mAddresses.count(name) == 0 || !isDeviceRange(mAddresses[name], bytes))
        {
            return fail(std::string("enqueueV3: no device buffer of ") + std::to_string(bytes) + " bytes for " + name);
        }
    }
    bool const half = mEngine.spec.type == nvinfer1::DataType::kHALF;
    int64_t const n = mInput.d[0], c = mInput.d[1], plane = mInput.d[2] * mInput.d[3];
    int64_t const classes = mEngine.spec.classes;
    void const* x = mAddresses["input"];
    void* y = mAddresses["logits"];
    for (int64_t b = 0; b < n; ++b)
    {
        for (int64_t k = 0; k < classes; ++k)
        {
            for (int64_t i = 0; i < plane; ++i)
            {
                int64_t const src = (b * c + k % c) * plane + i;
                int64_t const dst = (b * classes + k) * plane + i;
                float v = half ? fromHalf(static_cast<uint16_t const*>(x)[src]) : static_cast<float const*>(x)[src];
                if (classes == 1)
                {
                    v -= 0.5F;
                }
                if (half)
                {
                    static_cast<uint16_t*>(y)[dst] = toHalf(v);
                }
                else
                {
                    static_cast<float*>(y)[dst] = v;
                }
            }
        }
    }
    ++gReport.enqueues;
    return true;
}

class MockRuntime final : public nvinfer1::IRuntime
{
public:
    explicit MockRuntime(nvinfer1::ILogger& logger) : mLogger(logger) { ++gReport.objects; }
    ~MockRuntime() noexcept override
    {
        if (mEngines != 0)
        {
            ++gReport.orderViolations; // TensorRT: destroy engines before their runtime
        }
        --gReport.objects;
    }
    nvinfer1::ICudaEngine* deserializeCudaEngine(void const* blob, std::size_t size) noexcept override
    {
        std::string const text(static_cast<char const*>(blob), size);
        if (text.rfind("MOCKPLAN", 0) != 0)
        {
            mLogger.log(nvinfer1::ILogger::Severity::kERROR, "mock: not a mock plan (magic MOCKPLAN missing)");
            return nullptr;
        }
        PlanSpec spec;
        std::istringstream words(text.substr(8));
        for (std::string word; words >> word;)
        {
            std::string const key = word.substr(0, word.find('='));
            std::string const value = word.substr(word.find('=') + 1);
            if (key == "dtype")
            {
                spec.type = value == "float16" ? nvinfer1::DataType::kHALF : nvinfer1::DataType::kFLOAT;
            }
            else if (key == "channels")
            {
                spec.channels = std::atoll(value.c_str());
            }
            else if (key == "classes")
            {
                spec.classes = std::atoll(value.c_str());
            }
            else if (key == "min")
            {
                spec.minSize = std::atoll(value.c_str());
            }
            else if (key == "maxn")
            {
                spec.maxBatch = std::atoll(value.c_str());
            }
            else if (key == "aux")
            {
                spec.aux = value == "1";
            }
            else if (key == "max")
            {
                spec.maxSizes.clear();
                std::istringstream list(value);
                for (std::string item; std::getline(list, item, ',');)
                {
                    spec.maxSizes.push_back(std::atoll(item.c_str()));
                }
            }
        }
        mLogger.log(nvinfer1::ILogger::Severity::kINFO, "mock: plan deserialized");
        return new MockEngine(spec, mLogger, mEngines);
    }
    void setEngineHostCodeAllowed(bool allowed) noexcept override
    {
        std::printf("mock: host code allowed=%d\n", allowed ? 1 : 0);
    }

private:
    nvinfer1::ILogger& mLogger;
    int mEngines = 0;
};

} // namespace

namespace nvinfer1
{
IRuntime* createInferRuntime(ILogger& logger) noexcept
{
    return new MockRuntime(logger);
}
} // namespace nvinfer1

extern "C" {

cudaError_t cudaSetDevice(int device)
{
    return shouldFail("cudaSetDevice") ? cudaErrorNoDevice : device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaMalloc(void** devPtr, size_t size)
{
    if (shouldFail("cudaMalloc") || devPtr == nullptr || size == 0)
    {
        return size == 0 ? cudaErrorInvalidValue : cudaErrorMemoryAllocation;
    }
    *devPtr = std::malloc(size);
    gBlocks[*devPtr] = size;
    ++gReport.allocations;
    return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr)
{
    if (devPtr == nullptr)
    {
        return cudaSuccess;
    }
    if (gBlocks.erase(devPtr) == 0)
    {
        return cudaErrorInvalidValue;
    }
    std::free(devPtr);
    --gReport.allocations;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    bool const ok = stream != nullptr
        && ((kind == cudaMemcpyHostToDevice && isDeviceRange(dst, count))
            || (kind == cudaMemcpyDeviceToHost && isDeviceRange(src, count)));
    if (shouldFail("cudaMemcpyAsync") || !ok)
    {
        ++gReport.memcpyErrors;
        return cudaErrorInvalidValue;
    }
    std::memcpy(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags)
{
    if (shouldFail("cudaStreamCreateWithFlags") || pStream == nullptr || flags != cudaStreamNonBlocking)
    {
        return cudaErrorInvalidValue;
    }
    *pStream = new CUstream_st{static_cast<int>(++gReport.streams)};
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    delete stream;
    --gReport.streams;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    return shouldFail("cudaStreamSynchronize") || stream == nullptr ? cudaErrorInvalidValue : cudaSuccess;
}

const char* cudaGetErrorName(cudaError_t error)
{
    switch (error)
    {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    default: break;
    }
    return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error)
{
    return error == cudaErrorNoDevice ? "no CUDA-capable device is detected" : "mock CUDA error";
}

} // extern "C"
