using System.Runtime.InteropServices;

namespace NbdFast.IO.Uring;

/// <summary>
/// The io_uring ABI as of Linux 6.x: constants, the three syscalls and the shared structures. Tmds.LibC stops
/// at kernel 5.7 and its enter wrapper cannot pass an argument size, so the project owns this small surface.
/// Values are checked against include/uapi/linux/io_uring.h.
/// </summary>
internal static unsafe partial class IoUringNative
{
    // x86_64 and arm64 share these numbers.
    private const long SysIoUringSetup = 425;
    private const long SysIoUringEnter = 426;
    private const long SysIoUringRegister = 427;

    public const uint SetupCqSize = 1u << 3;
    public const uint SetupClamp = 1u << 4;
    public const uint SetupSubmitAll = 1u << 7;
    public const uint SetupCoopTaskrun = 1u << 8;
    public const uint SetupSingleIssuer = 1u << 12;
    public const uint SetupDeferTaskrun = 1u << 13;

    public const uint FeatSingleMmap = 1u << 0;
    public const uint FeatNoDrop = 1u << 1;

    public const uint EnterGetEvents = 1u << 0;
    public const uint EnterRegisteredRing = 1u << 4;

    public const long OffSqRing = 0;
    public const long OffCqRing = 0x8000000;
    public const long OffSqes = 0x10000000;

    public const byte OpNop = 0;
    public const byte OpFsync = 3;
    public const byte OpReadFixed = 4;
    public const byte OpWriteFixed = 5;
    public const byte OpSendMsg = 9;
    public const byte OpFallocate = 17;
    public const byte OpRead = 22;
    public const byte OpWrite = 23;
    public const byte OpSend = 26;
    public const byte OpRecv = 27;
    public const byte OpShutdown = 34;
    public const byte OpLast = 62;

    public const byte SqeFixedFile = 1 << 0;
    public const byte SqeIoLink = 1 << 2;

    public const uint FsyncDataSync = 1;
    public const int RwfDsync = 0x2;
    public const int MsgNoSignal = 0x4000;
    public const int MsgWaitAll = 0x100;

    public const uint RegisterBuffers = 0;
    public const uint UnregisterBuffers = 1;
    public const uint RegisterProbe = 8;
    public const uint RegisterFiles2 = 13;
    public const uint RegisterFilesUpdate2 = 14;
    public const uint RsrcRegisterSparse = 1;
    public const uint RegisterRingFds = 20;
    public const uint UnregisterRingFds = 21;

    public const ushort ProbeOpSupported = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct SqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd;
        public fixed uint Resv[3];
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    /// <summary>A 64-byte submission queue entry.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    public struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(1)] public byte Flags;
        [FieldOffset(2)] public ushort IoPrio;
        [FieldOffset(4)] public int Fd;
        [FieldOffset(8)] public ulong Offset;
        [FieldOffset(16)] public ulong Address;
        [FieldOffset(24)] public uint Length;
        [FieldOffset(28)] public uint OpFlags;
        [FieldOffset(32)] public ulong UserData;
        [FieldOffset(40)] public ushort BufIndex;
    }

    /// <summary>A 16-byte completion queue entry.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Cqe
    {
        public ulong UserData;
        public int Result;
        public uint Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>io_uring_rsrc_update, as IORING_REGISTER_RING_FDS takes it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RsrcUpdate
    {
        public uint Offset;
        public uint Resv;
        public ulong Data;
    }

    /// <summary>io_uring_rsrc_register, as IORING_REGISTER_FILES2 takes it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RsrcRegister
    {
        public uint Count;
        public uint Flags;
        public ulong Resv2;
        public ulong Data;
        public ulong Tags;
    }

    /// <summary>io_uring_rsrc_update2, as IORING_REGISTER_FILES_UPDATE2 takes it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RsrcUpdate2
    {
        public uint Offset;
        public uint Resv;
        public ulong Data;
        public ulong Tags;
        public uint Count;
        public uint Resv2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ProbeOp
    {
        public byte Op, Resv;
        public ushort Flags;
        public uint Resv2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ProbeHeader
    {
        public byte LastOp, OpsLength;
        public ushort Resv;
        public fixed uint Resv2[3];
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, long a1, long a2, long a3);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long a1, long a2, long a3, long a4);

    /// <summary>
    /// io_uring_enter runs once or twice per reactor turn, so it skips SetLastError's bookkeeping (clear errno
    /// before, copy it to a thread static after, every call); errno is read straight after the call, as that
    /// bookkeeping itself does, and only when the call failed.
    /// </summary>
    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long RawSyscall6(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    /// <summary>io_uring_setup; returns the ring fd or -errno.</summary>
    public static int Setup(uint entries, Params* parameters)
    {
        long result = Syscall3(SysIoUringSetup, entries, (long)parameters, 0);
        return result < 0 ? -Marshal.GetLastPInvokeError() : (int)result;
    }

    /// <summary>io_uring_enter; returns the number submitted or -errno.</summary>
    public static int Enter(int ringFd, uint toSubmit, uint minComplete, uint flags)
    {
        long result = RawSyscall6(SysIoUringEnter, ringFd, toSubmit, minComplete, flags, 0, 0);
        return result < 0 ? -Marshal.GetLastSystemError() : (int)result;
    }

    /// <summary>io_uring_register; returns the result or -errno.</summary>
    public static int Register(int ringFd, uint opcode, void* argument, uint count)
    {
        long result = Syscall4(SysIoUringRegister, ringFd, opcode, (long)argument, count);
        return result < 0 ? -Marshal.GetLastPInvokeError() : (int)result;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    public static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    public const int ProtRead = 1;
    public const int ProtWrite = 2;
    public const int MapShared = 1;
    public const int MapPopulate = 0x8000;
    public const int EfdCloexec = 0x80000;
}
