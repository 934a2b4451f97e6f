using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using NbdFast.Devices;

namespace NbdFast.IO.Posix;

/// <summary>
/// Byte-granular reads and writes on an O_DIRECT file: every transfer goes through an aligned bounce
/// buffer covering the aligned range, and an unaligned write reads its first and last blocks, merges, and
/// writes the whole range back under the device's exclusive write gate. A client never sees the EINVAL
/// O_DIRECT gives to misaligned I/O.
/// </summary>
internal sealed unsafe class DirectFileIo(SafeFileHandle handle, int alignment, DirectWriteGate gate)
{
    public int Alignment { get; } = alignment;

    public bool IsAligned(long offset, long length) => ((offset | length) & (Alignment - 1)) == 0;

    public void Read(long offset, Span<byte> destination)
    {
        long start = AlignDown(offset);
        int span = (int)(AlignUp(offset + destination.Length) - start);
        byte* bounce = (byte*)NativeMemory.AlignedAlloc((nuint)span, 4096);
        try
        {
            ReadFully(start, bounce, span);
            new ReadOnlySpan<byte>(bounce + (offset - start), destination.Length).CopyTo(destination);
        }
        finally
        {
            NativeMemory.AlignedFree(bounce);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        long start = AlignDown(offset);
        long end = AlignUp(offset + source.Length);
        int span = (int)(end - start);
        bool aligned = start == offset && end == offset + source.Length;
        byte* bounce = (byte*)NativeMemory.AlignedAlloc((nuint)span, 4096);
        bool shared = aligned && gate.TryEnterShared();
        if (!shared)
        {
            gate.EnterExclusive();
        }
        try
        {
            if (offset != start)
            {
                ReadFully(start, bounce, Alignment);
            }
            if (end != offset + source.Length && (end - Alignment != start || offset == start))
            {
                ReadFully(end - Alignment, bounce + span - Alignment, Alignment);
            }
            source.CopyTo(new Span<byte>(bounce + (offset - start), source.Length));
            for (int done = 0; done < span;)
            {
                done += PosixFile.Pwrite(handle, bounce + done, span - done, start + done);
            }
        }
        finally
        {
            if (shared)
            {
                gate.ExitShared();
            }
            else
            {
                gate.ExitExclusive();
            }
            NativeMemory.AlignedFree(bounce);
        }
    }

    private void ReadFully(long offset, byte* buffer, int count)
    {
        int done = 0;
        while (done < count)
        {
            int read = PosixFile.Pread(handle, buffer + done, count - done, offset + done);
            if (read == 0)
            {
                new Span<byte>(buffer + done, count - done).Clear();
                return;
            }
            done += read;
        }
    }

    private long AlignDown(long value) => value & ~(long)(Alignment - 1);

    private long AlignUp(long value) => (value + Alignment - 1) & ~(long)(Alignment - 1);
}
