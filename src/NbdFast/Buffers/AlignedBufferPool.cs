using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NbdFast.Buffers;

/// <summary>
/// Page-aligned native buffers in power-of-two size classes from 4 KiB to 32 MiB, kept on per-class free
/// lists. Owned by one reactor thread, so it takes no locks. Alignment suits O_DIRECT on any device with a
/// logical block size up to 4 KiB. Retention per class is capped, so a burst does not pin memory forever.
/// An optional slab (registered with the ring as one fixed buffer when the memlock budget allows) serves
/// the classes up to 1 MiB first: buffers carved from it are never freed, only recycled.
/// </summary>
internal sealed unsafe class AlignedBufferPool : IDisposable
{
    public const int Alignment = 4096;
    private const int MinShift = 12;
    private const int MaxShift = 25;
    private const int MaxSlabShift = 20;
    private const long RetainedBytesPerClass = 64L * 1024 * 1024;

    private readonly Stack<nint>[] _free = new Stack<nint>[MaxShift - MinShift + 1];
    private readonly byte* _slab;
    private readonly long _slabSize;
    private long _slabUsed;
    private long _outstandingBytes;

    /// <summary>Creates a pool; with <paramref name="slabSize"/> &gt; 0 it first carves buffers from one slab.</summary>
    public AlignedBufferPool(long slabSize = 0)
    {
        for (int i = 0; i < _free.Length; i++)
        {
            _free[i] = new Stack<nint>();
        }
        if (slabSize > 0)
        {
            _slabSize = slabSize & ~(Alignment - 1L);
            _slab = (byte*)NativeMemory.AlignedAlloc((nuint)_slabSize, Alignment);
        }
    }

    /// <summary>Start of the slab (null when there is none).</summary>
    public byte* Slab => _slab;

    /// <summary>Size of the slab in bytes.</summary>
    public long SlabSize => _slabSize;

    /// <summary>True when <paramref name="buffer"/> lies inside the slab.</summary>
    public bool InSlab(NativeBuffer buffer) => buffer.Pointer >= _slab && buffer.Pointer < _slab + _slabSize;

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
        if (_free[sizeClass].TryPop(out nint cached))
        {
            return new NativeBuffer((byte*)cached, capacity, sizeClass);
        }
        if (shift <= MaxSlabShift && _slabUsed + capacity <= _slabSize)
        {
            byte* carved = _slab + _slabUsed;
            _slabUsed += capacity;
            return new NativeBuffer(carved, capacity, sizeClass);
        }
        return new NativeBuffer((byte*)NativeMemory.AlignedAlloc((nuint)capacity, Alignment), capacity, sizeClass);
    }

    public void Return(NativeBuffer buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }
        _outstandingBytes -= buffer.Capacity;
        Debug.Assert(_outstandingBytes >= 0);
        if (!InSlab(buffer) && (buffer.SizeClass < 0 || (long)(_free[buffer.SizeClass].Count + 1) * buffer.Capacity > RetainedBytesPerClass))
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
                if ((byte*)pointer < _slab || (byte*)pointer >= _slab + _slabSize)
                {
                    NativeMemory.AlignedFree((void*)pointer);
                }
            }
        }
        if (_slab != null)
        {
            NativeMemory.AlignedFree(_slab);
        }
    }
}
