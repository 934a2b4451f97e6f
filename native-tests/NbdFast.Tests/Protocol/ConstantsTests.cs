using System.Buffers.Binary;
using NbdFast.Protocol;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// Every wire constant checked against the number the spec gives (nbd-proto.md, and
/// nbd-proto-extended-headers.md for the 64-bit extension). Expected values are written out literally,
/// never derived from the enums under test.
/// </summary>
public class ConstantsTests
{
    // ---- Magic numbers ----------------------------------------------------------------------------------

    public static TheoryData<ulong, ulong> SixtyFourBitMagics => new()
    {
        { NbdMagic.NbdMagicValue, 0x4e42444d41474943UL }, // "NBDMAGIC"
        { NbdMagic.IHaveOpt, 0x49484156454F5054UL },      // "IHAVEOPT"
        { NbdMagic.OldStyleMagic, 0x00420281861253UL },   // cliserv_magic
        { NbdMagic.OptionReply, 0x3e889045565a9UL },      // option reply magic
    };

    [Theory]
    [MemberData(nameof(SixtyFourBitMagics))]
    public void SixtyFourBitMagicMatchesSpec(ulong actual, ulong spec) => Assert.Equal(spec, actual);

    public static TheoryData<uint, uint> ThirtyTwoBitMagics => new()
    {
        { NbdMagic.Request, 0x25609513u },          // NBD_REQUEST_MAGIC
        { NbdMagic.ExtendedRequest, 0x21e41c71u },  // NBD_EXTENDED_REQUEST_MAGIC
        { NbdMagic.SimpleReply, 0x67446698u },      // NBD_SIMPLE_REPLY_MAGIC
        { NbdMagic.StructuredReply, 0x668e33efu },  // NBD_STRUCTURED_REPLY_MAGIC
        { NbdMagic.ExtendedReply, 0x6e8a278cu },    // NBD_EXTENDED_REPLY_MAGIC
    };

    [Theory]
    [MemberData(nameof(ThirtyTwoBitMagics))]
    public void ThirtyTwoBitMagicMatchesSpec(uint actual, uint spec) => Assert.Equal(spec, actual);

    [Theory]
    [InlineData(NbdMagic.NbdMagicValue, "NBDMAGIC")]
    [InlineData(NbdMagic.IHaveOpt, "IHAVEOPT")]
    public void AsciiMagicSpellsItsNameInNetworkOrder(ulong magic, string ascii)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, magic);
        Assert.Equal(ascii, System.Text.Encoding.ASCII.GetString(bytes));
    }

    // ---- Option numbers -----------------------------------------------------------------------------------

    public static TheoryData<NbdOption, uint> Options => new()
    {
        { NbdOption.ExportName, 1 },
        { NbdOption.Abort, 2 },
        { NbdOption.List, 3 },
        { NbdOption.PeekExport, 4 },
        { NbdOption.StartTls, 5 },
        { NbdOption.Info, 6 },
        { NbdOption.Go, 7 },
        { NbdOption.StructuredReply, 8 },
        { NbdOption.ListMetaContext, 9 },
        { NbdOption.SetMetaContext, 10 },
        { NbdOption.ExtendedHeaders, 11 },
    };

    [Theory]
    [MemberData(nameof(Options))]
    public void OptionMatchesSpec(NbdOption option, uint spec) => Assert.Equal(spec, (uint)option);

    // ---- Information types ----------------------------------------------------------------------------------

    public static TheoryData<NbdInfoType, ushort> InfoTypes => new()
    {
        { NbdInfoType.Export, 0 },
        { NbdInfoType.Name, 1 },
        { NbdInfoType.Description, 2 },
        { NbdInfoType.BlockSize, 3 },
    };

    [Theory]
    [MemberData(nameof(InfoTypes))]
    public void InfoTypeMatchesSpec(NbdInfoType type, ushort spec) => Assert.Equal(spec, (ushort)type);

    // ---- Option reply types -------------------------------------------------------------------------------

    public static TheoryData<NbdOptionReplyType, uint> OptionReplyTypes => new()
    {
        { NbdOptionReplyType.Ack, 1 },
        { NbdOptionReplyType.Server, 2 },
        { NbdOptionReplyType.Info, 3 },
        { NbdOptionReplyType.MetaContext, 4 },
        { NbdOptionReplyType.ErrUnsup, 2147483649 },          // 2^31 + 1
        { NbdOptionReplyType.ErrPolicy, 2147483650 },         // 2^31 + 2
        { NbdOptionReplyType.ErrInvalid, 2147483651 },        // 2^31 + 3
        { NbdOptionReplyType.ErrPlatform, 2147483652 },       // 2^31 + 4
        { NbdOptionReplyType.ErrTlsReqd, 2147483653 },        // 2^31 + 5
        { NbdOptionReplyType.ErrUnknown, 2147483654 },        // 2^31 + 6
        { NbdOptionReplyType.ErrShutdown, 2147483655 },       // 2^31 + 7
        { NbdOptionReplyType.ErrBlockSizeReqd, 2147483656 },  // 2^31 + 8
        { NbdOptionReplyType.ErrTooBig, 2147483657 },         // 2^31 + 9
        { NbdOptionReplyType.ErrExtHeaderReqd, 2147483658 },  // 2^31 + 10
        { NbdOptionReplyType.ErrorBit, 2147483648 },          // bit 31
    };

    [Theory]
    [MemberData(nameof(OptionReplyTypes))]
    public void OptionReplyTypeMatchesSpec(NbdOptionReplyType type, uint spec) => Assert.Equal(spec, (uint)type);

    // ---- Flags, as bit positions --------------------------------------------------------------------------

    public static TheoryData<NbdHandshakeFlags, int> HandshakeFlagBits => new()
    {
        { NbdHandshakeFlags.FixedNewstyle, 0 },
        { NbdHandshakeFlags.NoZeroes, 1 },
    };

    [Theory]
    [MemberData(nameof(HandshakeFlagBits))]
    public void HandshakeFlagIsSpecBit(NbdHandshakeFlags flag, int bit) => Assert.Equal(1 << bit, (int)flag);

    public static TheoryData<NbdClientFlags, int> ClientFlagBits => new()
    {
        { NbdClientFlags.FixedNewstyle, 0 },
        { NbdClientFlags.NoZeroes, 1 },
    };

    [Theory]
    [MemberData(nameof(ClientFlagBits))]
    public void ClientFlagIsSpecBit(NbdClientFlags flag, int bit) => Assert.Equal(1u << bit, (uint)flag);

    [Fact]
    public void KnownClientFlagsAreExactlyBitsZeroAndOne() => Assert.Equal(0x3u, (uint)NbdClientFlags.Known);

    public static TheoryData<NbdTransmissionFlags, int> TransmissionFlagBits => new()
    {
        { NbdTransmissionFlags.HasFlags, 0 },
        { NbdTransmissionFlags.ReadOnly, 1 },
        { NbdTransmissionFlags.SendFlush, 2 },
        { NbdTransmissionFlags.SendFua, 3 },
        { NbdTransmissionFlags.Rotational, 4 },
        { NbdTransmissionFlags.SendTrim, 5 },
        { NbdTransmissionFlags.SendWriteZeroes, 6 },
        { NbdTransmissionFlags.SendDf, 7 },
        { NbdTransmissionFlags.CanMultiConn, 8 },
        { NbdTransmissionFlags.SendResize, 9 },
        { NbdTransmissionFlags.SendCache, 10 },
        { NbdTransmissionFlags.SendFastZero, 11 },
        { NbdTransmissionFlags.BlockStatusPayload, 12 },
    };

    [Theory]
    [MemberData(nameof(TransmissionFlagBits))]
    public void TransmissionFlagIsSpecBit(NbdTransmissionFlags flag, int bit) => Assert.Equal(1 << bit, (int)flag);

    public static TheoryData<NbdCommandFlags, int> CommandFlagBits => new()
    {
        { NbdCommandFlags.Fua, 0 },
        { NbdCommandFlags.NoHole, 1 },
        { NbdCommandFlags.DontFragment, 2 },
        { NbdCommandFlags.ReqOne, 3 },
        { NbdCommandFlags.FastZero, 4 },
        { NbdCommandFlags.PayloadLen, 5 },
    };

    [Theory]
    [MemberData(nameof(CommandFlagBits))]
    public void CommandFlagIsSpecBit(NbdCommandFlags flag, int bit) => Assert.Equal(1 << bit, (int)flag);

    public static TheoryData<NbdReplyFlags, int> ReplyFlagBits => new()
    {
        { NbdReplyFlags.Done, 0 },
    };

    [Theory]
    [MemberData(nameof(ReplyFlagBits))]
    public void ReplyFlagIsSpecBit(NbdReplyFlags flag, int bit) => Assert.Equal(1 << bit, (int)flag);

    public static TheoryData<NbdAllocationState, int> AllocationStateBits => new()
    {
        { NbdAllocationState.Hole, 0 },  // NBD_STATE_HOLE
        { NbdAllocationState.Zero, 1 },  // NBD_STATE_ZERO
    };

    [Theory]
    [MemberData(nameof(AllocationStateBits))]
    public void AllocationStateIsSpecBit(NbdAllocationState state, int bit) => Assert.Equal(1u << bit, (uint)state);

    [Fact]
    public void NoneFlagsAndAllocatedDataAreZero()
    {
        Assert.Equal(0, (int)NbdHandshakeFlags.None);
        Assert.Equal(0u, (uint)NbdClientFlags.None);
        Assert.Equal(0, (int)NbdTransmissionFlags.None);
        Assert.Equal(0, (int)NbdCommandFlags.None);
        Assert.Equal(0, (int)NbdReplyFlags.None);
        Assert.Equal(0u, (uint)NbdAllocationState.Data);
    }

    // ---- Request (command) types ----------------------------------------------------------------------------

    public static TheoryData<NbdCommand, ushort> Commands => new()
    {
        { NbdCommand.Read, 0 },
        { NbdCommand.Write, 1 },
        { NbdCommand.Disconnect, 2 },
        { NbdCommand.Flush, 3 },
        { NbdCommand.Trim, 4 },
        { NbdCommand.Cache, 5 },
        { NbdCommand.WriteZeroes, 6 },
        { NbdCommand.BlockStatus, 7 },
        { NbdCommand.Resize, 8 },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void CommandMatchesSpec(NbdCommand command, ushort spec) => Assert.Equal(spec, (ushort)command);

    // ---- Reply chunk types ----------------------------------------------------------------------------------

    public static TheoryData<NbdReplyType, ushort> ReplyTypes => new()
    {
        { NbdReplyType.None, 0 },
        { NbdReplyType.OffsetData, 1 },
        { NbdReplyType.OffsetHole, 2 },
        { NbdReplyType.BlockStatus, 5 },
        { NbdReplyType.BlockStatusExt, 6 },
        { NbdReplyType.Error, 32769 },        // 2^15 + 1
        { NbdReplyType.ErrorOffset, 32770 },  // 2^15 + 2
        { NbdReplyType.ErrorBit, 32768 },     // bit 15
    };

    [Theory]
    [MemberData(nameof(ReplyTypes))]
    public void ReplyTypeMatchesSpec(NbdReplyType type, ushort spec) => Assert.Equal(spec, (ushort)type);

    // ---- Error values ---------------------------------------------------------------------------------------

    public static TheoryData<NbdError, uint> Errors => new()
    {
        { NbdError.None, 0 },
        { NbdError.Perm, 1 },           // NBD_EPERM
        { NbdError.IO, 5 },             // NBD_EIO
        { NbdError.NoMemory, 12 },      // NBD_ENOMEM
        { NbdError.Invalid, 22 },       // NBD_EINVAL
        { NbdError.NoSpace, 28 },       // NBD_ENOSPC
        { NbdError.Overflow, 75 },      // NBD_EOVERFLOW
        { NbdError.NotSupported, 95 },  // NBD_ENOTSUP
        { NbdError.Shutdown, 108 },     // NBD_ESHUTDOWN
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void ErrorMatchesSpec(NbdError error, uint spec) => Assert.Equal(spec, (uint)error);

    // ---- Every enum member is covered by a table above --------------------------------------------------------

    [Fact]
    public void EveryWireEnumMemberIsCheckedAgainstTheSpec()
    {
        AssertCovers<NbdOption>(Options);
        AssertCovers<NbdInfoType>(InfoTypes);
        AssertCovers<NbdOptionReplyType>(OptionReplyTypes);
        AssertCovers<NbdCommand>(Commands);
        AssertCovers<NbdReplyType>(ReplyTypes);
        AssertCovers<NbdError>(Errors);
        AssertCovers(HandshakeFlagBits, NbdHandshakeFlags.None);
        AssertCovers(ClientFlagBits, NbdClientFlags.None, NbdClientFlags.Known);
        AssertCovers(TransmissionFlagBits, NbdTransmissionFlags.None);
        AssertCovers(CommandFlagBits, NbdCommandFlags.None);
        AssertCovers(ReplyFlagBits, NbdReplyFlags.None);
        AssertCovers(AllocationStateBits, NbdAllocationState.Data);
    }

    private static void AssertCovers<TEnum>(IEnumerable<object?[]> table, params TEnum[] checkedElsewhere)
        where TEnum : struct, Enum
    {
        var covered = table.Select(row => Enum.GetName((TEnum)row[0]!)!).Concat(checkedElsewhere.Select(e => Enum.GetName(e)!));
        Assert.Equal(Enum.GetNames<TEnum>().Order(StringComparer.Ordinal), covered.Order(StringComparer.Ordinal));
    }

    // ---- Sizes ----------------------------------------------------------------------------------------------

    [Fact]
    public void FixedMessageSizesMatchTheSpecLayouts()
    {
        Assert.Equal(18, NbdLimits.GreetingSize);                // 64 + 64 + 16 bits
        Assert.Equal(16, NbdLimits.OptionHeaderSize);            // 64 + 32 + 32 bits
        Assert.Equal(20, NbdLimits.OptionReplyHeaderSize);       // 64 + 32 + 32 + 32 bits
        Assert.Equal(10, NbdLimits.ExportNameReplySize);         // 64 + 16 bits
        Assert.Equal(124, NbdLimits.ExportNameReplyPadding);     // 124 bytes of zeroes
        Assert.Equal(28, NbdLimits.RequestHeaderSize);           // 32 + 16 + 16 + 64 + 64 + 32 bits
        Assert.Equal(32, NbdLimits.ExtendedRequestHeaderSize);   // 32 + 16 + 16 + 64 + 64 + 64 bits
        Assert.Equal(16, NbdLimits.SimpleReplyHeaderSize);       // 32 + 32 + 64 bits
        Assert.Equal(20, NbdLimits.StructuredReplyHeaderSize);   // 32 + 16 + 16 + 64 + 32 bits
        Assert.Equal(32, NbdLimits.ExtendedReplyHeaderSize);     // 32 + 16 + 16 + 64 + 64 + 64 bits
    }

    [Fact]
    public void DefaultLimitsMatchTheSpec()
    {
        Assert.Equal(4096, NbdLimits.MaxStringLength);
        Assert.Equal(33554432, NbdLimits.DefaultMaxPayload);     // 2^25
        Assert.Equal(1, NbdLimits.DefaultMinBlockSize);
        Assert.Equal(4096, NbdLimits.DefaultPreferredBlockSize); // 2^12
        Assert.Equal("base:allocation", NbdLimits.BaseAllocation);
    }
}
