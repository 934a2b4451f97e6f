using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NbdFast.Buffers;

/// <summary>
/// Page-aligned native buffers in power-of-two size classes from 4 KiB to 32 MiB, kept on per-class free
/// lists. Owned by one reactor thread, so it takes no locks. Alignment suits O_DIRECT on any device with a
/// logical block size up to 4 KiB. Retention per class is capped, so a burst does not pin memory forever.
/// </summary>
internal sealed unsafe class AlignedBufferPool : IDisposable
{
    public const int Alignment = 4096;
    private const int MinShift = 12;
    private const int MaxShift = 25;
    private const long RetainedBytesPerClass = 64L * 1024 * 1024;

    private readonly Stack<nint>[] _free = new Stack<nint>[MaxShift - MinShift + 1];
    private long _outstandingBytes;

    public AlignedBufferPool()
    {
        for (int i = 0; i < _free.Length; i++)
        {
            _free[i] = new Stack<nint>();
        }
    }

    /// <summary>Bytes currently rented out.</summary>
    public long OutstandingBytes => _outstandingBytes;

    public NativeBuffer Rent(int length)
    {
        int shift = Math.Max(MinShift, 32 - int.LeadingZeroCount(Math.Max(length, 1) - 1));
        if (shift > MaxShift)
        {
            int size = (length + Alignment - 1) & ~(Alignment - 1);
            _outstandingBytes += size;
            return new NativeBuffer((byte*)NativeMemory.AlignedAlloc((nuint)size, Alignment), size, -1);
        }
        int sizeClass = shift - MinShift;
        int capacity = 1 << shift;
        _outstandingBytes += capacity;
        byte* pointer = _free[sizeClass].TryPop(out nint cached)
            ? (byte*)cached
            : (byte*)NativeMemory.AlignedAlloc((nuint)capacity, Alignment);
        return new NativeBuffer(pointer, capacity, sizeClass);
    }

    public void Return(NativeBuffer buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }
        _outstandingBytes -= buffer.Capacity;
        Debug.Assert(_outstandingBytes >= 0);
        if (buffer.SizeClass < 0 || (long)(_free[buffer.SizeClass].Count + 1) * buffer.Capacity > RetainedBytesPerClass)
        {
            NativeMemory.AlignedFree(buffer.Pointer);
            return;
        }
        _free[buffer.SizeClass].Push((nint)buffer.Pointer);
    }

    public void Dispose()
    {
        foreach (Stack<nint> list in _free)
        {
            while (list.TryPop(out nint pointer))
            {
                NativeMemory.AlignedFree((void*)pointer);
            }
        }
    }
}
