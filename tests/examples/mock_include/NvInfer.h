// Test mock API, NOT TensorRT: declares only the part of the TensorRT runtime API that
// examples/cpp/segment.cpp uses, with the signatures of NVIDIA's NvInferRuntime.h /
// NvInferRuntimeBase.h (TensorRT 10.16 and 11.1 agree on all of them; tests/examples checks the names
// against those headers). Linked with tests/examples/mock_runtime.cpp it runs segment.cpp's host-side
// logic on a CPU. Compile checks of segment.cpp use NVIDIA's real headers, never this file.
//
// Differences from the real headers that do not matter at the call sites: the real classes are
// non-virtual facades over an implementation pointer (mImpl), here they are abstract interfaces so a
// mock can implement them; createInferRuntime is an inline wrapper around createInferRuntime_INTERNAL
// there and a plain function here.
#ifndef UNETRT_TEST_STUB_NV_INFER_H
#define UNETRT_TEST_STUB_NV_INFER_H

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#define NV_TENSORRT_MAJOR 10
#define NV_TENSORRT_MINOR 0
#define NV_TENSORRT_PATCH 0

namespace nvinfer1
{

using AsciiChar = char;

class Dims64
{
public:
    static constexpr int32_t MAX_DIMS{8};
    int32_t nbDims;
    int64_t d[MAX_DIMS];
};
using Dims = Dims64;

enum class DataType : int32_t
{
    kFLOAT = 0,
    kHALF = 1,
    kINT8 = 2,
    kINT32 = 3,
    kBOOL = 4,
    kUINT8 = 5,
    kFP8 = 6,
    kBF16 = 7,
    kINT64 = 8,
    kINT4 = 9,
};

enum class TensorIOMode : int32_t
{
    kNONE = 0,
    kINPUT = 1,
    kOUTPUT = 2
};

enum class OptProfileSelector : int32_t
{
    kMIN = 0,
    kOPT = 1,
    kMAX = 2
};

enum class TensorFormat : int32_t
{
    kLINEAR = 0,
    kCHW2 = 1,
    kHWC8 = 2,
    kCHW4 = 3,
    kCHW16 = 4,
    kCHW32 = 5,
};

enum class ExecutionContextAllocationStrategy : int32_t
{
    kSTATIC = 0,
    kON_PROFILE_CHANGE = 1,
    kUSER_MANAGED = 2,
};

class ILogger
{
public:
    enum class Severity : int32_t
    {
        kINTERNAL_ERROR = 0,
        kERROR = 1,
        kWARNING = 2,
        kINFO = 3,
        kVERBOSE = 4,
    };
    virtual void log(Severity severity, AsciiChar const* msg) noexcept = 0;
    ILogger() = default;
    virtual ~ILogger() = default;

protected:
    ILogger(ILogger const&) = default;
    ILogger(ILogger&&) = default;
    ILogger& operator=(ILogger const&) & = default;
    ILogger& operator=(ILogger&&) & = default;
};

class IExecutionContext
{
public:
    virtual ~IExecutionContext() noexcept = default;
    virtual bool setInputShape(char const* tensorName, Dims const& dims) noexcept = 0;
    virtual Dims getTensorShape(char const* tensorName) const noexcept = 0;
    virtual bool setTensorAddress(char const* tensorName, void* data) noexcept = 0;
    virtual bool setOptimizationProfileAsync(int32_t profileIndex, cudaStream_t stream) noexcept = 0;
    virtual bool enqueueV3(cudaStream_t stream) noexcept = 0;
};

class ICudaEngine
{
public:
    virtual ~ICudaEngine() noexcept = default;
    virtual int32_t getNbIOTensors() const noexcept = 0;
    virtual char const* getIOTensorName(int32_t index) const noexcept = 0;
    virtual TensorIOMode getTensorIOMode(char const* tensorName) const noexcept = 0;
    virtual DataType getTensorDataType(char const* tensorName) const noexcept = 0;
    virtual Dims getTensorShape(char const* tensorName) const noexcept = 0;
    virtual TensorFormat getTensorFormat(char const* tensorName, int32_t profileIndex) const noexcept = 0;
    virtual int32_t getNbOptimizationProfiles() const noexcept = 0;
    virtual Dims getProfileShape(char const* tensorName, int32_t profileIndex, OptProfileSelector select) const
        noexcept = 0;
    virtual IExecutionContext* createExecutionContext(
        ExecutionContextAllocationStrategy strategy = ExecutionContextAllocationStrategy::kSTATIC) noexcept = 0;
};

class IRuntime
{
public:
    virtual ~IRuntime() noexcept = default;
    virtual ICudaEngine* deserializeCudaEngine(void const* blob, std::size_t size) noexcept = 0;
    virtual void setEngineHostCodeAllowed(bool allowed) noexcept = 0;
};

IRuntime* createInferRuntime(ILogger& logger) noexcept;

} // namespace nvinfer1

#endif // UNETRT_TEST_STUB_NV_INFER_H
