using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// The socket and the device file sit in the reactor's fixed-file table (slots derived from the connection's
/// index), so an SQE names them by slot and the kernel skips looking the descriptor up and taking a file
/// reference for each submission. When the table is missing or an update fails, SQEs carry the descriptors.
/// The slots are cleared only in <see cref="Close"/>, once no submission of the connection is in the kernel.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private void TakeFixedFileSlots()
    {
        _ringFd = _fd;
        _ringDeviceFd = _deviceFd;
        _fixedFileFlag = 0;
        if (!_reactor.FixedFiles)
        {
            return;
        }
        int socketSlot = Reactor.SocketFileSlot(_index);
        if (!_reactor.Ring.SetFixedFile(socketSlot, _fd))
        {
            return;
        }
        int deviceSlot = Reactor.DeviceFileSlot(_index);
        if (_deviceFd >= 0 && !_reactor.Ring.SetFixedFile(deviceSlot, _deviceFd))
        {
            _reactor.Ring.SetFixedFile(socketSlot, -1);
            return;
        }
        _ringFd = socketSlot;
        _ringDeviceFd = _deviceFd >= 0 ? deviceSlot : -1;
        _fixedFileFlag = SqeFixedFile;
    }

    private void ReleaseFixedFiles()
    {
        if (_fixedFileFlag == 0)
        {
            return;
        }
        _reactor.Ring.SetFixedFile(Reactor.SocketFileSlot(_index), -1);
        if (_deviceFd >= 0)
        {
            _reactor.Ring.SetFixedFile(Reactor.DeviceFileSlot(_index), -1);
        }
        _fixedFileFlag = 0;
    }
}
