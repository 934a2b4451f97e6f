using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>Computes the transmission flags an export advertises, honestly, from the device and the negotiation.</summary>
internal static class TransmissionFlagsBuilder
{
    public static NbdTransmissionFlags For(IBlockDevice device, bool readOnly, NegotiatedFeatures features, string exportName)
    {
        BlockDeviceCapabilities caps = device.Capabilities;
        bool writable = !readOnly && (caps & BlockDeviceCapabilities.ReadOnly) == 0;
        var flags = NbdTransmissionFlags.HasFlags;
        if (!writable) flags |= NbdTransmissionFlags.ReadOnly;
        if ((caps & BlockDeviceCapabilities.Flush) != 0) flags |= NbdTransmissionFlags.SendFlush;
        if ((caps & BlockDeviceCapabilities.Fua) != 0) flags |= NbdTransmissionFlags.SendFua;
        if ((caps & BlockDeviceCapabilities.Rotational) != 0) flags |= NbdTransmissionFlags.Rotational;
        if ((caps & BlockDeviceCapabilities.MultiConn) != 0) flags |= NbdTransmissionFlags.CanMultiConn;
        if ((caps & BlockDeviceCapabilities.Cache) != 0) flags |= NbdTransmissionFlags.SendCache;
        if (features.ReplyChunks) flags |= NbdTransmissionFlags.SendDf;
        // The payload form of BLOCK_STATUS only exists with extended headers and a selected context.
        if (features.ExtendedHeaders && features.HasAllocationContext(exportName)) flags |= NbdTransmissionFlags.BlockStatusPayload;
        if (writable)
        {
            if ((caps & BlockDeviceCapabilities.Trim) != 0) flags |= NbdTransmissionFlags.SendTrim;
            if ((caps & BlockDeviceCapabilities.WriteZeroes) != 0)
            {
                flags |= NbdTransmissionFlags.SendWriteZeroes;
                if ((caps & BlockDeviceCapabilities.FastZero) != 0) flags |= NbdTransmissionFlags.SendFastZero;
            }
        }
        return flags;
    }
}
