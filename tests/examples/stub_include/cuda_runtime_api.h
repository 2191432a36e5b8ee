// Test stub, NOT the CUDA runtime: declares only the CUDA runtime API calls, types and constants that
// examples/cpp/segment.cpp uses, with the signatures of CUDA's cuda_runtime_api.h / driver_types.h.
// tests/examples/mock_runtime.cpp implements them on host memory. Real builds use the CUDA toolkit.
#ifndef UNETRT_TEST_STUB_CUDA_RUNTIME_API_H
#define UNETRT_TEST_STUB_CUDA_RUNTIME_API_H

#include <stddef.h>

#define cudaStreamNonBlocking 0x01

typedef enum cudaError
{
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
} cudaError_t;

enum cudaMemcpyKind
{
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

typedef struct CUstream_st* cudaStream_t;

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void** devPtr, size_t size);
cudaError_t cudaFree(void* devPtr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

#ifdef __cplusplus
}
#endif

#endif // UNETRT_TEST_STUB_CUDA_RUNTIME_API_H
