using NbdFast.Devices;
using NbdFast.Diagnostics;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>Everything fixed for the life of one connection's transmission phase.</summary>
internal sealed class TransmissionContext
{
    public TransmissionContext(IBlockDevice device, NbdTransmissionFlags flags, bool structuredReplies, bool extendedHeaders, bool allocationContext, ServeOptions options,
        string exportName = "")
    {
        Device = device;
        Size = device.Size;
        Flags = flags;
        StructuredReplies = structuredReplies || extendedHeaders;
        ExtendedHeaders = extendedHeaders;
        AllocationContext = allocationContext;
        Options = options;
        Metrics = new ConnectionMetrics(exportName);
        // A device may advertise "no limit" (0xFFFFFFFF); buffers are still bounded, and larger requests get EOVERFLOW.
        MaxPayload = Math.Min(device.BlockSize.MaximumPayload, BufferLimit);
    }

    /// <summary>The largest payload the server will buffer for one request, whatever the device advertises.</summary>
    public const uint BufferLimit = 1u << 30;

    public IBlockDevice Device { get; }
    public long Size { get; }
    public NbdTransmissionFlags Flags { get; }
    /// <summary>Chunked replies are in use (structured or extended).</summary>
    public bool StructuredReplies { get; }
    public bool ExtendedHeaders { get; }
    /// <summary><c>base:allocation</c> was selected for this export.</summary>
    public bool AllocationContext { get; }
    public ServeOptions Options { get; }
    /// <summary>Where this connection's requests are counted and timed (tagged with its export name).</summary>
    public ConnectionMetrics Metrics { get; }
    public uint MaxPayload { get; }
    public bool ReadOnly => (Flags & NbdTransmissionFlags.ReadOnly) != 0;

    public bool Advertises(NbdTransmissionFlags flag) => (Flags & flag) != 0;

    /// <summary>
    /// Bytes of payload that follow a request header: with extended headers whatever PAYLOAD_LEN announces,
    /// with compact headers a WRITE's length.
    /// </summary>
    public ulong PayloadLength(in NbdRequest request)
    {
        if (ExtendedHeaders)
        {
            return (request.Flags & NbdCommandFlags.PayloadLen) != 0 ? request.Length : 0;
        }
        return request.Command == NbdCommand.Write ? request.Length : 0;
    }
}
