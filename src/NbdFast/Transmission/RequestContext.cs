using System.Buffers;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>
/// One request in flight: its header, its data buffer and a scratch area for small replies. Pooled per
/// connection so steady-state requests allocate nothing.
/// </summary>
internal sealed class RequestContext
{
    public NbdRequest Request;

    /// <summary>Bytes charged to the connection's in-flight budget.</summary>
    public long Cost;

    /// <summary>The error the reply carries (<see cref="NbdError.None"/> for success), for the metrics.</summary>
    public NbdError Outcome;

    /// <summary>When the header was parsed (0: not measured), and whether the request counts as in flight.</summary>
    public long Received;
    public bool Started;

    /// <summary>Write payload, or read data after <see cref="ReplyEncoder.Headroom"/> bytes of header room.</summary>
    public byte[]? Buffer;

    public readonly byte[] Scratch = new byte[ReplyEncoder.MaxSmallReply];

    private BlockExtent[]? _extents;

    public BlockExtent[] Extents(int count) => _extents is { } e && e.Length >= count ? e : _extents = new BlockExtent[count];

    public void RentBuffer(int length) => Buffer = ArrayPool<byte>.Shared.Rent(length);

    /// <summary>Swaps the buffer for a larger one; the request and its budget charge stay.</summary>
    public void GrowBuffer(int length)
    {
        if (Buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
        }
        Buffer = ArrayPool<byte>.Shared.Rent(length);
    }

    /// <summary>Returns the buffer to the pool; called once the reply no longer references it.</summary>
    public void Reset()
    {
        if (Buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = null;
        }
        Request = default;
        Cost = 0;
        Outcome = NbdError.None;
        Received = 0;
        Started = false;
    }
}
