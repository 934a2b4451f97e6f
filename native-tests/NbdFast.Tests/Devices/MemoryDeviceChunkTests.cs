using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NbdFast.Buffers;
using NbdFast.Devices;

namespace NbdFast.Tests.Devices;

/// <summary>
/// A memory device's chunks keep their bytes on a cache line, and the view transports send from (the array at
/// its aligned offset) holds exactly what the device's own reads return.
/// </summary>
public sealed class MemoryDeviceChunkTests
{
    [Fact]
    public void WrittenChunksStartTheirBytesOnACacheLine()
    {
        var device = new MemoryDevice(16L * MemoryDevice.ChunkSize);
        for (int i = 0; i < 16; i++)
        {
            device.Write((long)i * MemoryDevice.ChunkSize + 100, new byte[] { 1 });
            byte[] chunk = device.ChunkAt((long)i * MemoryDevice.ChunkSize)!;
            GCHandle pin = GCHandle.Alloc(chunk, GCHandleType.Pinned);
            try
            {
                long dataAddress = pin.AddrOfPinnedObject() + AlignedPinnedChunk.DataOffset(chunk);
                Assert.Equal(0, dataAddress % AlignedPinnedChunk.Alignment);
                Assert.True(AlignedPinnedChunk.DataOffset(chunk) + MemoryDevice.ChunkSize <= chunk.Length);
            }
            finally
            {
                pin.Free();
            }
        }
    }

    [Fact]
    public void TheAlignedViewHoldsWhatReadsReturn()
    {
        var device = new MemoryDevice(4L * MemoryDevice.ChunkSize);
        byte[] payload = new byte[2 * MemoryDevice.ChunkSize + 333];
        new Random(5).NextBytes(payload);
        long start = MemoryDevice.ChunkSize / 2 + 7;
        device.Write(start, payload);

        byte[] readBack = new byte[payload.Length];
        device.Read(start, readBack);
        Assert.Equal(payload, readBack);

        for (int i = 0; i < payload.Length; i += 4093)
        {
            long offset = start + i;
            byte[] chunk = device.ChunkAt(offset)!;
            int within = (int)(offset % MemoryDevice.ChunkSize);
            Assert.Equal(payload[i], chunk[AlignedPinnedChunk.DataOffset(chunk) + within]);
            // The header-free view (what writes copy into) is the same memory as the indexed one.
            Assert.True(Unsafe.AreSame(
                ref MemoryMarshal.GetReference(AlignedPinnedChunk.Bytes(chunk, within, 1)),
                ref chunk[AlignedPinnedChunk.DataOffset(chunk) + within]));
        }
    }
}
