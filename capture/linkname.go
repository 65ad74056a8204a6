package capture

// linkNames are the names of the tcpdump.org link-type registry
// (https://www.tcpdump.org/linktypes.html, the LINKTYPE_ names without
// the prefix) for the link types captures of IP traffic are most often
// written with, read or not. They let a message name a link type that
// Decode does not read ("9 (PPP)") instead of giving a bare number.
var linkNames = map[LinkType]string{
	0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP",
	9: "PPP", 10: "FDDI", 50: "PPP_HDLC", 51: "PPP_ETHER", 100: "ATM_RFC1483",
	101: "RAW", 104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY", 108: "LOOP",
	113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG", 119: "IEEE802_11_PRISM",
	122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX",
	138: "APPLE_IP_OVER_IEEE1394", 143: "DOCSIS", 144: "LINUX_IRDA",
	147: "USER0", 148: "USER1", 149: "USER2", 150: "USER3",
	163: "IEEE802_11_AVS", 166: "PPP_PPPD", 169: "GPRS_LLC", 177: "LINUX_LAPD",
	187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4_WITHFCS",
	197: "ERF", 201: "BLUETOOTH_HCI_H4_WITH_PHDR", 204: "PPP_WITH_DIR",
	205: "C_HDLC_WITH_DIR", 206: "FRELAY_WITH_DIR", 220: "USB_LINUX_MMAPPED",
	226: "IPNET", 227: "CAN_SOCKETCAN", 228: "IPV4", 229: "IPV6",
	230: "IEEE802_15_4_NOFCS", 231: "DBUS", 239: "NFLOG", 240: "NETANALYZER",
	241: "NETANALYZER_TRANSPARENT", 242: "IPOIB", 243: "MPEG_2_TS", 249: "USBPCAP",
	251: "BLUETOOTH_LE_LL", 253: "NETLINK", 254: "BLUETOOTH_LINUX_MONITOR",
	258: "PKTAP", 266: "USB_DARWIN", 271: "VSOCK", 272: "NORDIC_BLE",
	274: "ETHERNET_MPACKET", 276: "LINUX_SLL2", 281: "DSA_TAG_BRCM",
}

// Name returns the link type's name in the tcpdump.org registry, or
// "unknown" for a value that is not in tcpct's copy of it.
func (l LinkType) Name() string {
	if n, ok := linkNames[l]; ok {
		return n
	}
	return "unknown"
}
